#pragma once
#include <filesystem>
#include <string>

namespace shardinit::cli {

// Exit statuses of the shardinit command (docs/cli.md).
enum ExitStatus : int {
  kSuccess = 0,
  kMismatch = 1,      // verify: the file does not match the manifest
  kInvalidInput = 2,  // bad command line or manifest
  kIoError = 3,       // a file could not be read or written
  kInternalError = 4, // a bug: please report it
};

struct InitOptions {
  std::filesystem::path manifest;
  std::filesystem::path output;
  bool force = false;
  bool quiet = false;
};

struct VerifyOptions {
  std::filesystem::path manifest;
  std::filesystem::path file;
  bool quiet = false;
};

// Each returns an exit status; errors are thrown as shardinit::Error and mapped by main().
int run_init(const InitOptions& options);
int run_verify(const VerifyOptions& options);

}  // namespace shardinit::cli
