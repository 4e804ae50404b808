#pragma once
// Pieces shared by the whole-tensor checkpoint and the per-rank checkpoints.

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "io/atomic_file.hpp"
#include "shardinit/io/checkpoint.hpp"

namespace shardinit {

// Called after every piece of work of bounded size (a chunk generated and written, or read and
// compared): under MPI it answers the watchdog's roll call, so that a slow rank is never taken for a
// stuck one (mpi/wait.hpp). Empty: nothing to do.
using Heartbeat = std::function<void()>;

// The metadata every file records: format, stream format, seed, manifest digest and canonical spec.
[[nodiscard]] SafetensorsMetadata checkpoint_metadata(const Manifest& manifest);

// What the outputs of `manifest`'s run may replace: existing files only with `overwrite`, never the
// manifest itself (manifest.source), under whatever name.
[[nodiscard]] detail::OutputPolicy output_policy(const Manifest& manifest, bool overwrite);

[[nodiscard]] std::map<std::string, TensorFiller> fillers_by_name(const Manifest& manifest, FillOptions options);

// Opens the file at `path` and compares its header with `expected`: nothing if they are identical,
// otherwise the mismatch to report (a file that is not valid safetensors is a mismatch too).
[[nodiscard]] std::optional<VerifyResult> check_header(const SafetensorsLayout& expected,
                                                       const SafetensorsMetadata& expected_metadata,
                                                       const std::filesystem::path& path);

// "tensor 'w' differs at flat index 7 (element [1, 2]): expected bits 0x..., found 0x..."
[[nodiscard]] std::string describe_difference(const std::string& tensor, const Shape& shape, Index flat,
                                              std::span<const std::byte> expected, std::span<const std::byte> found);

// Compares the file at `path` with the file `expected` describes and `produce` fills: header bytes
// first (explaining the first difference), then every element.
[[nodiscard]] VerifyResult verify_file(const SafetensorsLayout& expected, const SafetensorsMetadata& expected_metadata,
                                       const TensorProducer& produce, const std::filesystem::path& path,
                                       const Heartbeat& heartbeat = {});

namespace detail {
// verify_rank_checkpoint with a heartbeat.
[[nodiscard]] VerifyResult verify_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                                  const std::filesystem::path& directory, FillOptions options,
                                                  const Heartbeat& heartbeat);
}  // namespace detail

}  // namespace shardinit
