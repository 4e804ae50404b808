#pragma once
// The one exception type of shardinit. Every message names the bad value and, where there is one, the
// tensor it belongs to; the kind lets a caller (the CLI) map an error to an exit status.

#include <stdexcept>
#include <string>

namespace shardinit {

enum class ErrorKind {
  invalid_argument,  // a parameter, shape, fan, dtype or manifest entry is not acceptable
  parse,             // the manifest is not valid JSON (message carries line and column)
  io,                // the operating system refused a read or a write
  bad_file,          // a file exists but is not a valid safetensors file of the expected form
  internal,          // an exception that is not a shardinit::Error (a bug), carried across ranks by the MPI protocol
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  [[nodiscard]] ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace shardinit
