#pragma once
// A directory of per-rank files (init --per-rank), read back as the set it must be: the files of one
// run of W ranks, each rank once, whose recorded boxes lie inside their tensors, are identical
// (replicas) or disjoint, and together cover every tensor. inspect reassembles the global tensors
// from it; anything else is refused with a message that says what is wrong or missing.

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "shardinit/format/safetensors.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit::detail {

// One stored piece of a global tensor: a tensor entry of one file, and what it holds: the elements
// [first, first + count) of `box` in its row-major order (the whole box, or a zero3 range of it,
// stored flat).
struct StoredPiece {
  const SafetensorsReader* file;
  const SafetensorsTensor* entry;
  Box box;
  Index first = 0;
  Index count = 0;
  bool flat = false;
  [[nodiscard]] std::string to_string() const;  // "box {start [0], extent [8]}", with " range [0, 3)" when flat
};

struct GlobalTensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  std::vector<StoredPiece> pieces;    // distinct pieces (a replicated piece is stored by several ranks: once here)
  std::vector<StoredPiece> replicas;  // the other copies of those pieces
  Index stored = 0;                   // elements the pieces hold (each element once: the boxes are disjoint)
};

inline constexpr std::size_t kNamedMissing = 8;

struct RankSet {
  std::vector<std::unique_ptr<SafetensorsReader>> files;  // by rank, the present ones
  int world = 0;
  Index missing_count = 0;             // ranks of 0..world-1 without a file
  std::vector<int> missing;            // the first few of them (at most kNamedMissing)
  std::vector<GlobalTensor> tensors;   // in the order in which the files hold them
  // The tensors of the manifest the first file records (its shardinit.spec), when readable: with
  // pipeline stages no file holds them all, so coverage is checked against these.
  std::optional<std::set<std::string>> recorded_names;
};

// Reads every rank file in `directory` (rank-RRRRR-of-WWWWW.safetensors, any number of digits from
// five, as rank_file_name writes them; hidden temporaries are ignored) and checks the set: one world
// size; each name canonical, its rank below the world and equal to the rank and world recorded inside;
// one manifest (digest and seed) for all; only tensors of that manifest, each with one global shape
// and dtype (files of different pipeline stages hold different tensors); every recorded box inside its tensor and equal to the stored entry's shape; boxes of one
// tensor identical or disjoint. Missing ranks are not an error here (see `missing`); throws
// Error(bad_file) naming the file, the tensor and the boxes for anything else, Error(io) if there is
// no rank file at all or a file cannot be read.
[[nodiscard]] RankSet read_rank_set(const std::filesystem::path& directory);

// Throws Error(bad_file) unless every replica holds the same bytes as the copy in `pieces` (reads them
// all; `heartbeat` is called after every chunk), naming the tensor, the box and the two files.
void check_replicas(const RankSet& set, const std::function<void()>& heartbeat);

// Throws Error(bad_file) naming the first tensor whose boxes do not cover it, when no rank is missing
// (with ranks missing, an incomplete tensor is what `missing` already says).
void check_coverage(const RankSet& set);

// "rank-00002-of-00004.safetensors, rank-00003-of-00004.safetensors (2 of 4 ranks)": the first few
// names, then how many more.
[[nodiscard]] std::string describe_missing(const RankSet& set);

}  // namespace shardinit::detail
