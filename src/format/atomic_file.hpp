#pragma once
// A file that appears at its target path complete or not at all: written under a temporary name in
// the same directory and renamed into place by commit(). Destroyed uncommitted (an exception), or
// ended by any catchable terminating signal (or by SIGKILL, where the guardian runs: io/leftovers.hpp),
// it removes the temporary file. It never replaces what
// is not a regular file of ours: a directory, a FIFO, a device, a symbolic link or an input of the
// run stay untouched, with or without overwrite.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "format/regular_file.hpp"

namespace shardinit::detail {

// A file the run reads (the manifest): no output may replace it, whatever name reaches it.
struct ProtectedInput {
  FileIdentity identity;
  std::string description;  // "the manifest m.json", for messages
};

// What an output may replace.
struct OutputPolicy {
  bool overwrite = false;               // replace an existing regular file (--force)
  std::vector<ProtectedInput> inputs;   // never replaced, even with overwrite
};

class AtomicFile {
 public:
  // Checks the target and creates the temporary beside it. Throws Error(io) if the target's directory
  // is missing or unwritable, if the target exists and is not a regular file (whatever `overwrite`
  // says), or exists and `overwrite` is false, or if the filesystem has fewer than `size` bytes free;
  // Error(invalid_argument) if the target is one of policy.inputs. `size` (the bytes the file will
  // hold) is also reserved where the filesystem can (fallocate), so that a full disk is found now.
  AtomicFile(std::filesystem::path target, const OutputPolicy& policy, std::uint64_t size);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Writes all of `bytes` at the current end of the file.
  void write(std::span<const std::byte> bytes);
  // Flushes what was written to stable storage (and to the server of a network filesystem, where other
  // nodes can then read it).
  void flush();
  // Flushes to stable storage and renames into place (checking the target once more):
  // prepare_commit() then finish_commit(). Writers that must agree before any file appears (every
  // rank its own file) prepare all first, agree, then finish: the last step is only a rename.
  void commit();
  void prepare_commit();  // flush, close, check the target; the file is still hidden
  void finish_commit();   // check the target again and rename (or link) into place

  // Where the data goes until commit(): other processes (MPI ranks) may write it too.
  [[nodiscard]] const std::filesystem::path& temporary_path() const noexcept { return temporary_; }

 private:
  [[noreturn]] void fail(const std::string& what, int error_number);
  void discard() noexcept;  // closes and removes the temporary, if any
  std::filesystem::path target_;
  std::filesystem::path temporary_;
  OutputPolicy policy_;
  int fd_ = -1;
  int slot_ = -1;  // entry in the signal handler's table of files to remove
};

// Throws the error AtomicFile would for `target` under `policy` (not a regular file, an input of the
// run, an existing file without overwrite), without creating anything. For checks made on every rank
// before any rank creates a file.
void check_replaceable(const std::filesystem::path& target, const OutputPolicy& policy);

// Throws Error(io) "cannot write SHOWN: directory D does not exist" (or is a FIFO, not a directory,
// or cannot be reached) unless `directory`, where the output SHOWN goes, is an existing directory.
void check_output_directory(const std::filesystem::path& directory, const std::string& shown);

// Throws Error(io) "... (no space left)" if the filesystem holding `directory` has fewer than `bytes`
// bytes available to us (statvfs f_bavail).
void check_free_space(const std::filesystem::path& directory, std::uint64_t bytes, const std::string& what);

// Removes every temporary file of every live AtomicFile of this process, and the output directories
// made for them (io/leftovers.hpp). Async-signal-safe: for paths that end the process without
// unwinding (MPI_Abort, the watchdog).
void remove_all_temporaries() noexcept;

}  // namespace shardinit::detail
