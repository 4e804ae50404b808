#pragma once
// Hugging Face sharded checkpoints: the split of a state dict into shard files, their names and the
// index file, exactly as huggingface_hub writes them (src/huggingface_hub/serialization/_base.py,
// split_state_dict_into_shards_factory; _torch.py, save_torch_state_dict), so that
// transformers' from_pretrained and huggingface_hub's load_torch_model read the directory.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardinit {

// huggingface_hub's MAX_SHARD_SIZE, "5GB" (decimal).
inline constexpr std::uint64_t kDefaultMaxShardSize = 5'000'000'000ULL;
inline constexpr const char* kHfSingleFile = "model.safetensors";
inline constexpr const char* kHfIndexFile = "model.safetensors.index.json";

// A size as huggingface_hub and transformers read it: a number (digits, an optional fraction) and
// a unit, case-insensitive: KB, MB, GB, TB (powers of 10, huggingface_hub's parse_size_to_int),
// KiB, MiB, GiB, TiB (powers of 2, transformers' convert_file_size_to_int), or B / no unit (bytes).
// "500MB" = 5·10^8, "2GiB" = 2·2^30, "1.5GB" = 1.5·10^9 (a fraction is truncated to whole bytes).
// Throws Error(invalid_argument) naming the text when it is none of these, zero, or beyond 2^63.
[[nodiscard]] std::uint64_t parse_shard_size(std::string_view text);

// A split into shard files: for each shard, in shard order, positions into the state dict.
using HfSplit = std::vector<std::vector<std::size_t>>;

// The shards of tensors of `sizes` bytes (in state-dict order), as lists of positions into `sizes`, in
// shard order. huggingface_hub's greedy rule: a tensor larger than `max_shard_size` gets a shard of
// its own at once (the shard being filled stays open); a tensor that would take the current shard
// past the limit closes it and starts the next; tensors are never split. No tensors: no shards.
[[nodiscard]] HfSplit split_into_shards(const std::vector<std::uint64_t>& sizes, std::uint64_t max_shard_size);

// "model.safetensors" for a single shard, else "model-00002-of-00005.safetensors" (1-based).
[[nodiscard]] std::string hf_shard_file_name(std::size_t shard, std::size_t shards);

// (shard, shards) of a name that is exactly hf_shard_file_name(shard, shards) for shards >= 2;
// nothing for any other name.
[[nodiscard]] std::optional<std::pair<std::size_t, std::size_t>> parse_hf_shard_file_name(std::string_view name);

// Whether a loader would read `name` as weights of a Hugging Face directory: model.safetensors,
// the index, or a shard file name.
[[nodiscard]] bool is_hf_weights_file_name(std::string_view name);

// The index file's text: {"metadata": {"total_size": total_size, extra...}, "weight_map": {tensor:
// file, ...}} as Python's json.dump(index, f, indent=2) writes it (keys in the order given, non-ASCII
// escaped, no final newline). weight_map in shard order, each shard's tensors in state-dict order.
[[nodiscard]] std::string hf_index_json(std::uint64_t total_size,
                                        const std::vector<std::pair<std::string, std::string>>& extra_metadata,
                                        const std::vector<std::pair<std::string, std::string>>& weight_map);

// A parsed index: the metadata's string values (total_size as its decimal text) and the weight map.
struct HfIndex {
  std::uint64_t total_size = 0;
  std::vector<std::pair<std::string, std::string>> metadata;    // the other keys, string values
  std::vector<std::pair<std::string, std::string>> weight_map;  // sorted by tensor name
};
// Throws Error(bad_file) naming `where` if the text is not such an index.
[[nodiscard]] HfIndex parse_hf_index(const std::string& text, const std::string& where);

// The split an index records, over the tensors `names` (state-dict order): for each shard file
// model-0000K-of-0000N, K = 1..N, the positions into `names` of the tensors its weight map gives that
// file, ascending. Whatever max shard size wrote it, this is the split to read it with. When the
// weight map is not a split of `names`, `problem` names the first tensor or file at fault, and
// `split` is empty: the tensors are checked first (a tensor `names` lacks, one of `names` without a
// file), then the files (a name that is not a shard file name, shards of two different counts N, a
// shard K of N given no tensor).
struct HfIndexSplit {
  std::optional<HfSplit> split;
  std::string problem;
};
[[nodiscard]] HfIndexSplit split_of_index(const HfIndex& index, const std::vector<std::string>& names);

}  // namespace shardinit
