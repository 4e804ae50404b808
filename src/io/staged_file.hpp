#pragma once
// Writing a file in two steps, for writers that must agree before any file appears: stage (write
// and flush everything to the hidden temporary) and then commit (rename into place). Under MPI, each
// rank stages its own rank file, the ranks agree that all succeeded, and only then does each commit;
// a rank that failed makes every rank drop its staged file, so a failed job leaves no rank file.

#include <filesystem>
#include <memory>
#include <vector>

#include "io/atomic_file.hpp"
#include "io/checkpoint_internal.hpp"
#include "shardinit/io/checkpoint.hpp"
#include "shardinit/io/safetensors.hpp"

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

// A written, not yet visible file: commit() renames it into place (and keeps the directories made for
// it); destroying it uncommitted removes the temporary (and those directories).
class StagedFile {
 public:
  StagedFile() = default;
  explicit StagedFile(std::unique_ptr<AtomicFile> file, std::unique_ptr<MadeDirectories> directories = {})
      : directories_(std::move(directories)), file_(std::move(file)) {}
  // The directories made for this file: removed with it unless it is committed.
  void attach(std::unique_ptr<MadeDirectories> directories) { directories_ = std::move(directories); }
  // Flushes and checks the target, still hidden (AtomicFile::prepare_commit).
  void prepare() { file_->prepare_commit(); }
  void commit() {
    file_->commit();
    if (directories_) directories_->keep();
  }

 private:
  std::unique_ptr<MadeDirectories> directories_;  // destroyed after the file: its temporary goes first
  std::unique_ptr<AtomicFile> file_;
};

// write_safetensors without the final commit.
[[nodiscard]] StagedFile stage_safetensors(const std::filesystem::path& path, const SafetensorsLayout& layout,
                                           const TensorProducer& produce, const OutputPolicy& policy,
                                           const Heartbeat& heartbeat = {});

// write_rank_checkpoint without the final commit; `stats` receives what it reports.
[[nodiscard]] StagedFile stage_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                               const std::filesystem::path& directory, bool overwrite,
                                               FillOptions options, WriteStats& stats, const Heartbeat& heartbeat = {});



}  // namespace shardinit::detail
