#pragma once
// The drivers' shared steps, over a WritePlan: the one-process and one-rank drivers
// (checkpoint/checkpoint.cpp) and the MPI driver (mpi/collective_checkpoint.cpp) differ only in who
// creates the outputs, who writes which ranges and how the ranks agree.

#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/file_bytes.hpp"
#include "format/atomic_file.hpp"
#include "format/staged_directory.hpp"
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/checkpoint/write_plan.hpp"

namespace shardinit {

// Called after every piece of work of bounded size (a piece generated and written, or read and
// compared): under MPI it answers the watchdog's roll call, so that a slow rank is never taken for a
// stuck one (mpi/wait.hpp). Empty: nothing to do.
using Heartbeat = std::function<void()>;

// What the outputs of `manifest`'s run may replace: existing files only with `overwrite`, never the
// manifest itself (manifest.source), under whatever name.
[[nodiscard]] detail::OutputPolicy output_policy(const Manifest& manifest, bool overwrite);

// Opens the file at `path` and compares its header with `expected`: nothing if they are identical,
// otherwise the mismatch to report (a file that is not valid safetensors is a mismatch too).
[[nodiscard]] std::optional<VerifyResult> check_header(const SafetensorsLayout& expected,
                                                       const SafetensorsMetadata& expected_metadata,
                                                       const std::filesystem::path& path);

namespace detail {

// Where each planned file is read from once written: the target itself (safetensors), or the file's
// name inside the target directory.
[[nodiscard]] std::vector<std::filesystem::path> planned_paths(const WritePlan& plan, const std::filesystem::path& target);

// Names a Hugging Face directory holds, which --force may replace: model*.safetensors, its index,
// and the plan's companion files.
[[nodiscard]] std::function<bool(const std::string&)> hf_replaceable(const WritePlan& plan);

// The files a staged hf directory holds: the shards, the index if there is one, the companions.
[[nodiscard]] std::vector<StagedFileSpec> staged_files(const WritePlan& plan);

// Writes the plan's small text files into the staged directory `staging` (rank 0's job): the index
// and the companions; messages name them inside `target`.
void write_texts(const WritePlan& plan, const std::filesystem::path& staging, const std::filesystem::path& target);

// Writes this rank's ranges of the plan's files at `paths` (which exist: created by whoever stages
// the output), generating on `threads` threads while this thread writes; then flushes them. Each rank
// opens its own descriptors. `fault` is asked before the work starts and before each write
// (sites "fill", "write"; under MPI: fault injection for the tests).
struct RangeWork {
  int threads = 1;
  Heartbeat after_piece;
  std::function<void(std::string_view site)> fault;  // throws where a fault is injected
  ProgressCallback progress;
};
// Messages name the files as `shown` says (the output's own paths, not the temporaries).
void write_ranges(const WritePlan& plan, const std::vector<std::filesystem::path>& paths, const std::vector<std::filesystem::path>& shown,
                  const ManifestFillers& fillers, const RangeWork& work);

// verify with split_as_found: the text of `directory`'s model.safetensors.index.json, or nothing
// when it has none (throws Error(io) when it is there but cannot be read).
[[nodiscard]] std::optional<std::string> hf_index_text(const std::filesystem::path& directory);

// verify with split_as_found: sets request.split to the split that the index (its text, or none: one
// shard) records over the manifest's tensors; returns the mismatch instead when the index is not a
// split of them (every rank computes the same from the same text).
[[nodiscard]] std::optional<VerifyResult> take_split_found(OutputRequest& request, const Manifest& manifest,
                                                           const std::optional<std::string>& index_text);

// The headers of every planned file (and the index): the first difference, or nothing.
[[nodiscard]] std::optional<VerifyResult> check_headers(const WritePlan& plan, const std::vector<std::filesystem::path>& paths,
                                                        const std::filesystem::path& target);

// Reads this rank's ranges back and compares them (in parallel); the first difference in this rank's
// range order, with `position` its place in the whole output (file, byte) for choosing among ranks.
struct RangeDifference {
  VerifyResult result;
  std::size_t file = 0;
  std::uint64_t offset = 0;
};
[[nodiscard]] std::optional<RangeDifference> compare_ranges(const WritePlan& plan, const std::vector<std::filesystem::path>& paths,
                                                            const ManifestFillers& fillers, const RangeWork& work,
                                                            Index& elements_checked);

// "N tensors, M elements and the header match" and its kin, for a plan whose ranges all matched.
[[nodiscard]] std::string match_summary(const WritePlan& plan, Index elements, int ranks);

}  // namespace detail

}  // namespace shardinit
