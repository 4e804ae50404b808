#pragma once
// A file that appears at its target path complete or not at all: written under a temporary name in
// the same directory and renamed into place by commit(). Destroyed uncommitted (an exception), or
// interrupted by SIGINT/SIGTERM/SIGHUP, it removes the temporary file.

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>

namespace shardinit::detail {

class AtomicFile {
 public:
  // Throws Error(io) if the target's directory is missing or unwritable, or (unless `overwrite`)
  // if the target already exists.
  AtomicFile(std::filesystem::path target, bool overwrite);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Writes all of `bytes` at the current end of the file.
  void write(std::span<const std::byte> bytes);
  // Flushes to stable storage and renames into place.
  void commit();

  // Where the data goes until commit(): other processes (MPI ranks) may write it too.
  [[nodiscard]] const std::filesystem::path& temporary_path() const noexcept { return temporary_; }

 private:
  [[noreturn]] void fail(const std::string& what, int error_number);
  std::filesystem::path target_;
  std::filesystem::path temporary_;
  bool overwrite_;
  int fd_ = -1;
  int slot_ = -1;  // entry in the signal handler's table of files to remove
};

}  // namespace shardinit::detail
