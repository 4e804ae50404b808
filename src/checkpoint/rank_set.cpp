#include "checkpoint/rank_set.hpp"

#include <algorithm>
#include <tuple>
#include <charconv>
#include <cstring>
#include <span>
#include <map>
#include <optional>
#include <set>

#include "shardinit/error.hpp"
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/checkpoint/rank_checkpoint.hpp"
#include "util/checked.hpp"
#include "util/printable.hpp"
#include "util/strict_json.hpp"

namespace shardinit::detail {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The tensor names of a recorded canonical spec ({"tensors": [{"name": ...}, ...]}), or nothing if it
// cannot be read (files not written by shardinit: their tensors are then taken as they come).
std::optional<std::set<std::string>> recorded_tensor_names(const std::string& spec) {
  try {
    const json document = parse_strict_json(spec, "spec").document;
    const auto tensors = document.find("tensors");
    if (tensors == document.end() || !tensors->is_array()) return std::nullopt;
    std::set<std::string> names;
    for (const json& t : *tensors) {
      const auto name = t.find("name");
      if (name == t.end() || !name->is_string()) return std::nullopt;
      names.insert(name->get<std::string>());
    }
    return names;
  } catch (const Error&) {
    return std::nullopt;
  }
}

[[noreturn]] void bad(const std::string& what) { throw Error(ErrorKind::bad_file, what); }

// (rank, world) of a canonical rank file name, or nothing.
std::optional<std::pair<int, int>> parse_rank_file_name(const std::string& name) {
  constexpr std::string_view kPrefix = "rank-", kMiddle = "-of-", kSuffix = ".safetensors";
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return std::nullopt;
  const std::string_view body = std::string_view(name).substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  const auto middle = body.find(kMiddle);
  if (middle == std::string_view::npos) return std::nullopt;
  const auto number = [](std::string_view text) -> std::optional<int> {
    int value = 0;
    if (text.size() < 5 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
  };
  const auto rank = number(body.substr(0, middle)), world = number(body.substr(middle + kMiddle.size()));
  if (!rank || !world) return std::nullopt;
  return std::pair{*rank, *world};
}

// Non-negative integers of a recorded box, overflow-checked.
std::optional<Shape> index_list(const json& value) {
  if (!value.is_array()) return std::nullopt;
  Shape out;
  for (const json& v : value) {
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<Index>::max())) {
      return std::nullopt;
    }
    out.push_back(static_cast<Index>(v.get<std::uint64_t>()));
  }
  return out;
}

bool inside(const Shape& shape, const Box& box) {
  if (box.start.size() != shape.size() || box.extent.size() != shape.size()) return false;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (box.start[d] > shape[d] || box.extent[d] > shape[d] - box.start[d]) return false;
  }
  return true;
}

bool same_box(const Box& x, const Box& y) { return x.start == y.start && x.extent == y.extent; }

bool same_piece(const StoredPiece& x, const StoredPiece& y) {
  return same_box(x.box, y.box) && x.first == y.first && x.count == y.count && x.flat == y.flat;
}

bool overlap(const Box& x, const Box& y) {
  for (std::size_t d = 0; d < x.start.size(); ++d) {
    if (x.start[d] + x.extent[d] <= y.start[d] || y.start[d] + y.extent[d] <= x.start[d]) return false;
  }
  return true;
}

// The first pair of distinct pieces that overlap, if any. Pieces of one box (zero3 ranges of a
// data-parallel group, or the whole box) overlap where their ranges do: sorted by range, neighbours
// are compared. Distinct boxes overlap where they meet: a sweep along dimension 0 compares only boxes
// whose rows meet (for the grid partitions layouts make, a handful at a time). A scalar's pieces are
// all one box.
std::optional<std::pair<const StoredPiece*, const StoredPiece*>> first_overlap(const std::vector<StoredPiece>& pieces) {
  if (pieces.empty()) return std::nullopt;
  std::vector<const StoredPiece*> sorted;
  for (const auto& p : pieces) sorted.push_back(&p);
  std::sort(sorted.begin(), sorted.end(), [](auto* x, auto* y) {
    return std::tie(x->box.start, x->box.extent, x->first) < std::tie(y->box.start, y->box.extent, y->first);
  });
  std::vector<const StoredPiece*> boxes;  // one piece per distinct box
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0 && same_box(sorted[i - 1]->box, sorted[i]->box)) {
      if (sorted[i - 1]->first + sorted[i - 1]->count > sorted[i]->first) return std::pair{sorted[i - 1], sorted[i]};
      continue;
    }
    boxes.push_back(sorted[i]);
  }
  if (boxes.front()->box.start.empty()) return std::nullopt;  // a scalar: one box, checked above
  std::sort(boxes.begin(), boxes.end(), [](auto* x, auto* y) { return x->box.start[0] < y->box.start[0]; });
  std::vector<const StoredPiece*> active;
  for (const StoredPiece* p : boxes) {
    const Index row = p->box.start[0];
    std::erase_if(active, [row](const StoredPiece* a) { return a->box.start[0] + a->box.extent[0] <= row; });
    for (const StoredPiece* a : active) {
      if (overlap(a->box, p->box)) return std::pair{a, p};
    }
    active.push_back(p);
  }
  return std::nullopt;
}

}  // namespace

std::string StoredPiece::to_string() const {
  return "box " + box.to_string() + (flat ? " range [" + std::to_string(first) + ", " + std::to_string(first + count) + ")" : "");
}

RankSet read_rank_set(const fs::path& directory) {
  const std::string dir = printable(directory.string());
  // 1. The names: one world size, canonical, ranks inside it.
  std::map<int, fs::path> by_rank;
  std::map<int, std::string> world_example;  // world size -> a file of it
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".")) continue;  // a hidden temporary of a run in progress or killed
    const auto parsed = parse_rank_file_name(name);
    if (!parsed) {
      if (name.starts_with("rank-") && name.ends_with(".safetensors")) {
        bad(dir + ": " + quote(name) + " is not a rank file name shardinit writes (rank-RRRRR-of-WWWWW.safetensors)");
      }
      continue;
    }
    const auto [rank, world] = *parsed;
    if (rank_file_name(rank, world) != name) {
      bad(dir + ": " + quote(name) + " is not a rank file name shardinit writes (expected " +
          quote(rank_file_name(rank, world)) + ")");
    }
    if (world < 1 || rank >= world) bad(dir + ": " + quote(name) + " names rank " + std::to_string(rank) + " of a world of " + std::to_string(world));
    world_example.emplace(world, name);
    by_rank.emplace(rank, entry.path());
  }
  if (ec) throw Error(ErrorKind::io, "cannot read directory " + dir + ": " + ec.message());
  if (by_rank.empty()) throw Error(ErrorKind::io, dir + ": no rank files (rank-RRRRR-of-WWWWW.safetensors) in this directory");
  if (world_example.size() > 1) {
    std::string sizes;
    for (const auto& [w, example] : world_example) sizes += (sizes.empty() ? "" : ", ") + std::to_string(w) + " (" + example + ")";
    bad(dir + ": rank files of different runs: world sizes " + sizes);
  }
  RankSet set;
  set.world = world_example.begin()->first;
  // The world may be 2^31 - 1 ranks with one file present: count the missing ones, name a few.
  set.missing_count = static_cast<Index>(set.world) - static_cast<Index>(by_rank.size());
  for (int r = 0; r < set.world && set.missing.size() < kNamedMissing && static_cast<Index>(set.missing.size()) < set.missing_count; ++r) {
    if (!by_rank.contains(r)) set.missing.push_back(r);
  }

  // 2. The files: what each records about itself and its run.
  std::optional<std::pair<std::string, std::string>> run;  // (manifest digest, seed) of the first file
  std::map<std::string, std::size_t> index;
  std::vector<int> ranks;
  for (const auto& [rank, path] : by_rank) {
    set.files.push_back(std::make_unique<SafetensorsReader>(path));
    ranks.push_back(rank);
    const SafetensorsReader& file = *set.files.back();
    const std::string name = quote(rank_file_name(rank, set.world));
    const auto meta = [&](const char* key) -> std::string {
      const auto it = file.metadata().find(key);
      if (it == file.metadata().end()) {
        bad(dir + ": " + name + " has no " + quote(key) + " metadata: not a rank file of shardinit init --per-rank");
      }
      return it->second;
    };
    if (meta(kMetaRank) != std::to_string(rank) || meta(kMetaWorld) != std::to_string(set.world)) {
      bad(dir + ": " + name + " records rank " + printable(meta(kMetaRank)) + " of " + printable(meta(kMetaWorld)) +
          ": it was renamed, or written by another run");
    }
    const std::pair current{meta(kMetaDigest), meta(kMetaSeed)};
    if (!run) run = current;
    if (current != *run) {
      bad(dir + ": " + name + " is from another manifest than " + quote(rank_file_name(ranks.front(), set.world)) +
          " (manifest digest " + printable(current.first.substr(0, 23)) + " vs " + printable(run->first.substr(0, 23)) + ")");
    }
    json shards;
    try {
      shards = parse_strict_json(meta(kMetaShards), "metadata").document;
    } catch (const Error& e) {
      bad(dir + ": " + name + ": unreadable " + quote(kMetaShards) + " metadata (" + e.what() + ")");
    }
    if (!shards.is_object()) bad(dir + ": " + name + ": " + quote(kMetaShards) + " metadata is not an object");

    // 3. Its tensors (those of its pipeline stages: files of different stages hold different
    // tensors), boxes inside their tensors and as stored.
    // The spec is recorded once per set, in rank 0's file (whichever file comes first records it, if any).
    if (set.files.size() == 1 && file.metadata().contains(kMetaSpec)) set.recorded_names = recorded_tensor_names(meta(kMetaSpec));
    for (const SafetensorsTensor& t : file.tensors()) {
      const std::string tensor = "tensor " + quote(t.name);
      const auto s = shards.find(t.name);
      if (s == shards.end() || !s->is_object()) bad(dir + ": " + name + ": no recorded box for " + tensor);
      const auto field = [&](const char* key) {
        const auto it = s->find(key);
        const auto list = it == s->end() ? std::nullopt : index_list(*it);
        if (!list) bad(dir + ": " + name + ": " + tensor + ": unreadable recorded " + key);
        return *list;
      };
      const Shape shape = field("shape");
      const Box box{field("start"), field("extent")};
      try {
        (void)element_count(shape);
      } catch (const Error&) {
        bad(dir + ": " + name + ": " + tensor + ": the recorded shape " + shape_to_string(shape) + " has too many elements");
      }
      // A fused dimension [dim, parts]: the box is one of the shape with that dimension as (parts,
      // chunk) (layout_space), and the tensor is stored with it merged back.
      TensorLayout fused;
      if (s->contains("fused")) {
        const Shape f = field("fused");
        if (f.size() != 2 || f[0] >= static_cast<Index>(shape.size()) || f[1] < 1 || shape[static_cast<std::size_t>(f[0])] % f[1] != 0) {
          bad(dir + ": " + name + ": " + tensor + ": the recorded fused dimension " + shape_to_string(f) + " is not [dim, parts] of shape " +
              shape_to_string(shape));
        }
        fused.fused = FusedParts{static_cast<std::size_t>(f[0]), f[1]};
      }
      const Shape space = layout_space(shape, fused);
      if (!inside(space, box)) {
        bad(dir + ": " + name + ": " + tensor + ": the recorded box " + box.to_string() + " is not inside its shape " +
            shape_to_string(space));
      }
      StoredPiece piece{&file, &t, box, 0, box.element_count(), false};
      if (const auto flat = s->find("flat"); flat != s->end()) {  // a zero3 range, stored as a 1-d tensor
        const auto range = index_list(*flat);
        if (!range || range->size() != 2 || (*range)[0] > piece.count || (*range)[1] > piece.count - (*range)[0]) {
          bad(dir + ": " + name + ": " + tensor + ": the recorded flat range " + printable(flat->dump(), 80) +
              " is not [first, count] inside its box " + box.to_string());
        }
        piece = StoredPiece{&file, &t, box, (*range)[0], (*range)[1], true};
        if (t.shape != Shape{piece.count}) {
          bad(dir + ": " + name + ": " + tensor + " is stored with shape " + shape_to_string(t.shape) + " but records " +
              piece.to_string());
        }
      } else if (t.shape != merge_fused(box.extent, fused)) {
        bad(dir + ": " + name + ": " + tensor + " is stored with shape " + shape_to_string(t.shape) + " but records the box " +
            box.to_string());
      }
      if (set.recorded_names && !set.recorded_names->contains(t.name)) {
        bad(dir + ": " + name + " holds " + tensor + ", which the recorded manifest does not have");
      }
      auto [it, inserted] = index.emplace(t.name, set.tensors.size());
      if (inserted) set.tensors.push_back(GlobalTensor{t.name, t.dtype, shape, {}, {}, 0});
      GlobalTensor& g = set.tensors[it->second];
      if (g.shape != shape || g.dtype != t.dtype) {
        bad(dir + ": the rank files disagree on " + tensor + ": " + std::string(dtype_name(g.dtype)) + " " +
            shape_to_string(g.shape) + " in " + quote(rank_file_name(ranks.front(), set.world)) + ", " +
            std::string(dtype_name(t.dtype)) + " " + shape_to_string(shape) + " in " + name);
      }
      const bool replica = std::any_of(g.pieces.begin(), g.pieces.end(), [&](const StoredPiece& p) { return same_piece(p, piece); });
      if (piece.count > 0) (replica ? g.replicas : g.pieces).push_back(piece);
    }
  }
  // 4. The boxes of a tensor: replicas or disjoint (then the elements stored count each once, and
  // add up to no more than the tensor holds).
  for (GlobalTensor& g : set.tensors) {
    if (const auto pair = first_overlap(g.pieces)) {
      const auto who = [&](const StoredPiece* p) {
        for (std::size_t i = 0; i < set.files.size(); ++i) {
          if (set.files[i].get() == p->file) return rank_file_name(ranks[i], set.world);
        }
        return std::string("?");
      };
      bad(dir + ": tensor " + quote(g.name) + ": the " + pair->first->to_string() + " of " + who(pair->first) +
          " overlaps the " + pair->second->to_string() + " of " + who(pair->second) +
          " without being the same (a replica): these files are not one run's");
    }
    for (const StoredPiece& p : g.pieces) g.stored += p.count;
  }
  return set;
}

namespace {

std::string file_of(const RankSet& set, const SafetensorsReader* file) {
  for (const auto& f : set.files) {
    if (f.get() == file) return quote(f->path().filename().string());
  }
  return "?";
}

}  // namespace

void check_replicas(const RankSet& set, const std::function<void()>& heartbeat) {
  constexpr std::size_t kChunk = std::size_t{8} << 20;
  std::vector<std::byte> a(kChunk), b(kChunk);
  for (const GlobalTensor& g : set.tensors) {
    for (const StoredPiece& copy : g.replicas) {
      const auto original = std::find_if(g.pieces.begin(), g.pieces.end(), [&](const StoredPiece& p) { return same_piece(p, copy); });
      if (original == g.pieces.end()) continue;
      const std::uint64_t bytes = copy.entry->end - copy.entry->begin;
      for (std::uint64_t at = 0; at < bytes; at += kChunk) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, bytes - at));
        original->file->read(original->file->data_start() + original->entry->begin + at, std::span(a.data(), n));
        copy.file->read(copy.file->data_start() + copy.entry->begin + at, std::span(b.data(), n));
        if (std::memcmp(a.data(), b.data(), n) != 0) {
          std::size_t i = 0;
          while (a[i] == b[i]) ++i;
          bad("tensor " + quote(g.name) + ": the copy of " + copy.to_string() + " in " + file_of(set, copy.file) +
              " differs from the one in " + file_of(set, original->file) + " at byte " + std::to_string(at + i) +
              " of the box: replicas must be identical");
        }
        if (heartbeat) heartbeat();
      }
    }
  }
}

void check_coverage(const RankSet& set) {
  if (set.missing_count > 0) return;
  // Every tensor of the manifest is in some file (a stage's tensors are in its ranks' files only).
  if (set.recorded_names && set.recorded_names->size() != set.tensors.size()) {
    for (const std::string& n : *set.recorded_names) {
      if (std::none_of(set.tensors.begin(), set.tensors.end(), [&](const GlobalTensor& g) { return g.name == n; })) {
        bad("tensor " + quote(n) + " of the recorded manifest is in none of the " + std::to_string(set.files.size()) + " rank files");
      }
    }
  }
  for (const GlobalTensor& g : set.tensors) {
    const Index total = element_count(g.shape);
    if (g.stored != total) {
      bad("tensor " + quote(g.name) + ": the " + std::to_string(set.files.size()) + " rank files hold " +
          std::to_string(g.stored) + " of its " + std::to_string(total) +
          " elements: their boxes do not cover it (hand-edited, or not one run's)");
    }
  }
}

std::string describe_missing(const RankSet& set) {
  std::string text;
  for (std::size_t i = 0; i < set.missing.size(); ++i) text += (i ? ", " : "") + rank_file_name(set.missing[i], set.world);
  if (set.missing_count > static_cast<Index>(set.missing.size())) {
    text += " and " + std::to_string(set.missing_count - static_cast<Index>(set.missing.size())) + " more";
  }
  return text + " (" + std::to_string(set.missing_count) + " of " + std::to_string(set.world) + " ranks)";
}

}  // namespace shardinit::detail
