#pragma once
// Writing a file in two steps, for writers that must agree before any file appears: stage (write
// and flush everything to the hidden temporary) and then commit (rename into place). Under MPI, each
// rank stages its own rank file, the ranks agree that all succeeded, and only then does each commit;
// a rank that failed makes every rank drop its staged file, so a failed job leaves no rank file.

#include <filesystem>
#include <memory>

#include "io/atomic_file.hpp"
#include "io/checkpoint_internal.hpp"
#include "shardinit/io/checkpoint.hpp"
#include "shardinit/io/safetensors.hpp"

namespace shardinit::detail {

// A written, not yet visible file: commit() renames it into place; destroying it uncommitted
// removes the temporary.
using StagedFile = std::unique_ptr<AtomicFile>;

// write_safetensors without the final commit.
[[nodiscard]] StagedFile stage_safetensors(const std::filesystem::path& path, const SafetensorsLayout& layout,
                                           const TensorProducer& produce, const OutputPolicy& policy,
                                           const Heartbeat& heartbeat = {});

// write_rank_checkpoint without the final commit; `stats` receives what it reports.
[[nodiscard]] StagedFile stage_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                               const std::filesystem::path& directory, bool overwrite,
                                               FillOptions options, WriteStats& stats, const Heartbeat& heartbeat = {});

// Makes `directory` (and its parents) if it is missing, for --per-rank. Throws Error(io) naming the
// directory if it cannot be made or exists as something else than a directory.
void make_output_directory(const std::filesystem::path& directory);

}  // namespace shardinit::detail
