#pragma once
// The write plan: what a run writes, format-neutral. For every output file: its safetensors layout
// (header bytes, where each tensor goes) and where each stored tensor's elements come from (a box of
// a manifest tensor, or a flat range of one); and which byte ranges of which files THIS rank
// generates and writes (init) or reads back and compares (verify). Built once from the manifest, the
// output format and (world, rank); every driver (one process, one rank alone, MPI) consumes it for
// init and verify alike, so adding an output format means adding its case here (docs/architecture.md).
//
// Files every rank shares (one safetensors file, a Hugging Face directory) are decomposed for I/O,
// not by layout: a value depends only on its flat index, so the files' bytes, laid end to end, are
// split into one contiguous, balanced, aligned range per rank, and each rank generates exactly the
// elements of its range, whatever tensors those are, in a few large writes. Layouts decide what a
// rank holds in memory and in its per-rank file, never who writes which bytes of a shared file.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shardinit/format/hf_sharding.hpp"
#include "shardinit/format/safetensors.hpp"
#include "shardinit/manifest/manifest.hpp"

namespace shardinit {

enum class OutputFormat {
  safetensors,  // one file holding every tensor whole
  hf,           // a directory: model.safetensors, or model-0000i-of-0000N.safetensors + index (huggingface_hub's split)
  per_rank,     // each rank's holdings in DIR/rank-RRRRR-of-WWWWW.safetensors
};

// "safetensors", "hf", "per-rank".
[[nodiscard]] const char* output_format_name(OutputFormat format) noexcept;

// A small file written beside the tensors of a Hugging Face directory (the model's config.json, the
// manifest it was made from): staged and committed with the shards, by rank 0 under MPI.
struct CompanionFile {
  std::string name;  // a plain file name: no '/', not a shard's or the index's name
  std::string text;
};

struct OutputRequest {
  OutputFormat format = OutputFormat::safetensors;
  std::uint64_t max_shard_size = kDefaultMaxShardSize;  // hf only
  // hf only: the shards (manifest positions) to plan instead of huggingface_hub's split at
  // max_shard_size; every tensor in exactly one shard, no shard empty.
  std::optional<HfSplit> split;
  // verify, hf only: check a directory with the split its own index records, whatever max shard size
  // wrote it (verify_output reads it into `split`; a directory without an index is one shard).
  bool split_as_found = false;
  std::vector<CompanionFile> companions;  // hf only
};

// The request for `format` (and, for hf, the largest shard) without companions.
[[nodiscard]] inline OutputRequest output_request(OutputFormat format, std::uint64_t max_shard_size = kDefaultMaxShardSize) {
  OutputRequest request;
  request.format = format;
  request.max_shard_size = max_shard_size;
  return request;
}

// Element i of a stored tensor is element first + i, in the box's row-major order, of `box` of the
// manifest tensor (a whole tensor: the whole box, first 0).
struct StoredTensor {
  const ManifestTensor* tensor = nullptr;  // points into the manifest the plan was made from
  Shape space;  // the shape `box` is a box of: the tensor's, or its layout_space (a fused dimension)
  Box box;
  Index first = 0;
  Index count = 0;
  bool flat = false;  // a zero3 range, stored as a 1-d tensor of `count` elements
};

struct PlannedFile {
  std::string name;  // safetensors: empty (the output path itself); otherwise the file's name in the output directory
  SafetensorsLayout layout;
  SafetensorsMetadata metadata;     // as in the layout's header
  std::vector<StoredTensor> stored;  // parallel to layout.tensors() (data order)
};

// Bytes [begin, end) of files[file].
struct FileRange {
  std::size_t file = 0;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

struct WritePlan {
  OutputFormat format = OutputFormat::safetensors;
  int world = 1;
  int rank = 0;
  // safetensors: the one file; hf: the shards in order; per_rank: this rank's file only.
  std::vector<PlannedFile> files;
  // hf with more than one shard: the text of model.safetensors.index.json (written by rank 0).
  std::optional<std::string> index;
  // hf: the split was given (verify: as the directory's index records it), not made at a max shard size.
  bool split_given = false;
  // hf: the request's companion files (written by rank 0, compared by verify when requested).
  std::vector<CompanionFile> companions;
  // This rank's share, in file order: for shared files, one contiguous range of the files laid end to
  // end (each file starting aligned); per_rank: all of its own file.
  std::vector<FileRange> ranges;

  [[nodiscard]] std::uint64_t total_bytes() const noexcept;   // of every file (the index and companions too)
  [[nodiscard]] std::uint64_t bytes_of_this_rank() const noexcept;
  [[nodiscard]] Index elements_of_this_rank() const;           // the elements its ranges hold
  [[nodiscard]] std::int64_t tensor_count() const noexcept;    // tensors stored (per_rank: in this rank's file)
};

// Where the ranges of shared files start and end: multiples of this many bytes from the start of
// their file (1 MiB: a Lustre stripe, a multiple of every page and element size), or 4 KiB when the
// job is small (less than 64 MiB per rank), so that small jobs still spread over every rank.
[[nodiscard]] std::uint64_t range_alignment(std::uint64_t total_bytes, int world) noexcept;

// Throws Error(invalid_argument) as the manifest's mesh does for `world`, for a rank outside it,
// when a header would exceed the safetensors library's limit, for companion files outside hf or
// with a bad or taken name, and for a split that is not one of the manifest's tensors (or
// split_as_found without the split read).
[[nodiscard]] WritePlan plan_output(const Manifest& manifest, const OutputRequest& request, int world, int rank);

// The metadata every file records: format "pt", stream format, seed, manifest digest; and the
// canonical spec (`with_spec`), which is recorded once per output: in the one file, in the index of
// a sharded directory, in rank 0's file of a per-rank set.
[[nodiscard]] SafetensorsMetadata checkpoint_metadata(const Manifest& manifest, bool with_spec = true);

}  // namespace shardinit
