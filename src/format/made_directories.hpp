#pragma once
// Directories made for an output (per-rank files): removed again unless the output is committed.

#include <filesystem>
#include <vector>

namespace shardinit::detail {

// The output directory of per-rank files, made where missing. A run that fails must leave nothing,
// so unless keep() is called the destructor removes the directories it made (deepest first, and only
// while empty: another rank's file, or anything a user put there, keeps a directory).
class MadeDirectories {
 public:
  // Throws Error(io) naming the directory if it cannot be made or is something else than a directory.
  explicit MadeDirectories(const std::filesystem::path& directory);
  ~MadeDirectories() { abandon(); }
  MadeDirectories(const MadeDirectories&) = delete;
  MadeDirectories& operator=(const MadeDirectories&) = delete;
  void keep() noexcept;

 private:
  void abandon() noexcept;  // removes what it made (while empty) and forgets it
  std::vector<std::filesystem::path> made_;  // outermost first
  int leftover_ = -1;  // their registration for removal if the process dies (io/leftovers.hpp)
};

}  // namespace shardinit::detail
