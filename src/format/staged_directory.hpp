#pragma once
// A directory that appears at its target path complete or not at all: its files are written inside a
// hidden directory beside the target (.NAME.tmp-XXXXXX, same filesystem), which commit() renames into
// place. Destroyed uncommitted (an exception), or ended by a signal or SIGKILL (io leftovers: the
// guardian), it removes the staging directory and its files. An existing target is replaced only with
// overwrite, and only if it holds nothing but what such an output holds (names for which
// `replaceable` says yes: a user's other files are never deleted); an empty directory is replaced
// without overwrite (nothing is lost).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "format/atomic_file.hpp"

namespace shardinit::detail {

struct StagedFileSpec {
  std::string name;  // a plain file name
  std::uint64_t size = 0;  // reserved (fallocate) where the filesystem can
};

class StagedDirectory {
 public:
  using Replaceable = std::function<bool(const std::string& name)>;
  // Checks the target (check_replaceable_directory), its free space for all files, and creates the
  // staging directory with every file, empty. Throws Error(io) naming the path and the reason.
  StagedDirectory(std::filesystem::path target, const OutputPolicy& policy, const std::vector<StagedFileSpec>& files,
                  Replaceable replaceable);
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;

  [[nodiscard]] const std::filesystem::path& staging() const noexcept { return staging_; }
  [[nodiscard]] std::filesystem::path file(const std::string& name) const { return staging_ / name; }

  // Checks every file's size, flushes the directory, then renames it into place: over an absent or
  // empty target; over a replaceable one by exchanging the two (renameat2 RENAME_EXCHANGE) and
  // removing the old one's files. The files' data must have been flushed by their writers.
  void commit(const std::vector<StagedFileSpec>& files);

 private:
  std::filesystem::path target_;
  std::filesystem::path staging_;
  OutputPolicy policy_;
  Replaceable replaceable_;
  int slot_ = -1;  // leftover registration of the staging directory
  void discard() noexcept;  // removes the staging directory, if any
};

// Throws the error StagedDirectory would for `target` (its parent missing; something else than a
// directory there; a directory holding a file `replaceable` refuses, or an input of the run; an
// existing non-empty directory without overwrite), creating nothing. For checks on every rank.
void check_replaceable_directory(const std::filesystem::path& target, const OutputPolicy& policy,
                                 const StagedDirectory::Replaceable& replaceable);

}  // namespace shardinit::detail
