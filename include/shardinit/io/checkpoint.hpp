#pragma once
// A manifest's checkpoint: the safetensors file holding every tensor of the manifest, whole, with
// metadata that records what determined the values. The bytes depend only on the manifest's
// canonical spec (see canonical_spec_json), so two runs, or two machines, write identical files.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "shardinit/io/safetensors.hpp"
#include "shardinit/manifest/manifest.hpp"

namespace shardinit {

// __metadata__ keys written by shardinit.
inline constexpr const char* kMetaFormat = "format";                           // "pt", as transformers expects
inline constexpr const char* kMetaStreamFormat = "shardinit.stream_format";    // kStreamFormatVersion
inline constexpr const char* kMetaSeed = "shardinit.seed";                     // decimal
inline constexpr const char* kMetaDigest = "shardinit.manifest_digest";        // manifest_digest()
inline constexpr const char* kMetaSpec = "shardinit.spec";                     // canonical_spec_json()

[[nodiscard]] SafetensorsLayout checkpoint_layout(const Manifest& manifest);

struct WriteStats {
  std::int64_t tensors = 0;
  std::int64_t elements = 0;
  std::uint64_t bytes = 0;  // file size
};

// Called as the work advances: (elements done, elements in all).
using ProgressCallback = std::function<void(std::int64_t done, std::int64_t total)>;

// Generates every tensor and writes the file atomically (see write_safetensors).
WriteStats write_checkpoint(const Manifest& manifest, const std::filesystem::path& path, bool overwrite,
                            const ProgressCallback& progress = {}, FillOptions options = {});

struct VerifyResult {
  bool match = false;
  std::string message;                // the first difference, or a summary of the match
  std::optional<std::string> tensor;  // the tensor of the first mismatch, when there is one
  std::optional<Index> index;         // its flat index, for a data mismatch
  std::int64_t elements_checked = 0;
};

// Recomputes the checkpoint of `manifest` and compares it with the file at `path`: header, metadata
// and every element. Throws Error(io) if the file cannot be read; a file that is not valid
// safetensors is a mismatch (match == false) rather than an exception.
[[nodiscard]] VerifyResult verify_checkpoint(const Manifest& manifest, const std::filesystem::path& path,
                                             FillOptions options = {});

}  // namespace shardinit
