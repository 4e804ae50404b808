#pragma once
// Pieces shared by the whole-tensor checkpoint and the per-rank checkpoints.

#include <map>
#include <optional>
#include <span>
#include <string>

#include "shardinit/io/checkpoint.hpp"

namespace shardinit {

// The metadata every file records: format, stream format, seed, manifest digest and canonical spec.
[[nodiscard]] SafetensorsMetadata checkpoint_metadata(const Manifest& manifest);

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
                                       const TensorProducer& produce, const std::filesystem::path& path);

}  // namespace shardinit
