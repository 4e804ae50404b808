// shard_check: end-to-end check of shardinit under MPI for one manifest at any valid rank count.
//
//   mpiexec -n N shard_check MANIFEST SCRATCH_DIR [--tp-size-from-world]
//
// For every tensor of MANIFEST:
//   * the process mesh and each tensor's layout are what the manifest's JSON says (re-derived here
//     from the raw JSON and docs/layouts.md, independently of the library's parser);
//   * every rank's box (shardinit::mpi::fill_local) is the box derived here (row-major rank
//     numbering, torch.chunk splits), and its bytes are bit-for-bit the same box cut out of a
//     single-process whole-tensor fill (TensorFiller::fill_flat);
//   * under a data partition (docs/layouts.md), zero3 ranges are DeepSpeed ZeRO-3's (re-derived here
//     from partition_parameters.py's _padding_size / _aligned_size / partition_size) and fsdp2 boxes
//     torch.chunk of the tensor-parallel box's dimension 0; expert tensors split dimension 0 over
//     the expert axis, inside the data part as Megatron-Core numbers it;
//   * the boxes of all ranks tile the tensor with the right replication, exactly one replica is the
//     writer of each element (is_writer), and owners() lists the holders;
//   * a rank generates exactly the elements it holds (rank files) or those of its byte range of the
//     write plan (the global file, docs/architecture.md):
//     counted by shardinit::detail::generated_elements, so a rank of one pipeline stage never
//     computes a tensor of another;
// then, for the whole manifest:
//   * the collective file (mpi::write_checkpoint) is byte-identical to the single-process file;
//   * mpi::verify_checkpoint matches; a corrupted data byte is reported (match == false) on every
//     rank with the right tensor and flat index, the first in file order when there are two; a
//     corrupted header is a mismatch; a missing file is the same error on every rank;
//   * the per-rank files (mpi::write_rank_checkpoints) reassemble, from their
//     __metadata__["shardinit.shards"], into the single-process tensors; mpi::verify_rank_checkpoints
//     matches, and reports a corrupted rank file.
//
// --tp-size-from-world replaces "parallel"."tensor"."size" by the number of ranks (so one 1d
// manifest serves every rank count).
//
// Every failed check prints "FAIL [rank R] ..." to stderr; rank 0 prints a final summary line
// "shard_check: ...: P passed, F failed" and the exit status is non-zero when anything failed on any
// rank. An unexpected exception aborts the job (MPI_Abort), so nothing is left waiting.

#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mpi/check.hpp"
#include "shardinit/error.hpp"
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/checkpoint/rank_checkpoint.hpp"
#include "shardinit/checkpoint/write_plan.hpp"
#include "shardinit/format/safetensors.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/mpi/mpi.hpp"

namespace fs = std::filesystem;
using namespace shardinit;
using json = nlohmann::json;

using namespace shardinit::mpi_test;

namespace {

// WriteOptions that replace an existing output, the rest at their defaults.
WriteOptions overwriting(bool overwrite = true) {
  WriteOptions options;
  options.overwrite = overwrite;
  return options;
}



std::string join(const std::vector<Index>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + std::to_string(values[i]);
  return text + "]";
}
std::string join(const std::vector<int>& values) {
  return join(std::vector<Index>(values.begin(), values.end()));
}
std::string box_text(const Box& box) { return "start " + join(box.start) + " extent " + join(box.extent); }

std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ull;
  return h;
}

// Whether every rank passed the same value.
bool same_everywhere(long long value) {
  long long lo = 0, hi = 0;
  MPI_Allreduce(&value, &lo, 1, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&value, &hi, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
  return lo == hi;
}
bool same_everywhere(const std::string& text) { return same_everywhere(static_cast<long long>(fnv1a(text) >> 1)); }

// Runs a collective library call; a shardinit::Error is caught and returned (the library promises
// the same Error on every rank, which is checked).
std::optional<Error> collective(const std::string& what, const std::function<void()>& call) {
  std::optional<Error> error;
  try {
    call();
  } catch (const Error& e) {
    error = e;
  }
  expect(same_everywhere(error ? 1LL : 0LL), what + ": every rank has the same outcome (threw or not)");
  if (error) expect(same_everywhere(std::string(error->what())), what + ": every rank has the same error message");
  return error;
}

std::vector<std::byte> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

// XORs one byte of a file in place (applying it twice restores the file).
void flip_byte(const fs::path& path, std::uint64_t offset, unsigned char mask = 0x5A) {
  const int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0) throw std::runtime_error("cannot open " + path.string());
  unsigned char byte = 0;
  if (::pread(fd, &byte, 1, static_cast<off_t>(offset)) != 1) throw std::runtime_error("pread " + path.string());
  byte ^= mask;
  if (::pwrite(fd, &byte, 1, static_cast<off_t>(offset)) != 1) throw std::runtime_error("pwrite " + path.string());
  ::fsync(fd);
  ::close(fd);
}

// Calls f(local index, global flat index) for every element of `box` in its row-major order.
template <class F>
void for_each_in_box(const Shape& shape, const Box& box, F f) {
  Index count = 1;
  for (Index e : box.extent) count *= e;
  if (count == 0) return;
  std::vector<Index> strides(shape.size(), 1);
  for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  std::vector<Index> position = box.start;
  for (Index i = 0; i < count; ++i) {
    Index flat = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) flat += position[d] * strides[d];
    f(i, flat);
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++position[d] < box.start[d] + box.extent[d]) break;
      position[d] = box.start[d];
    }
  }
}

Index count_of(const Shape& shape) {
  Index n = 1;
  for (Index d : shape) n *= d;
  return n;
}

// ---- Independent re-derivation of meshes and layouts (docs/layouts.md) ----

// The tensor-parallel part of the mesh (docs/layouts.md): 1d [P], 2d [q, q], 2.5d [d, q, q], 3d [p, p, p].
std::vector<int> expected_tensor_mesh(const json& parallel) {
  if (!parallel.contains("tensor")) return {1};
  const json& tp = parallel["tensor"];
  const std::string mode = tp["mode"];
  const int size = tp["size"];
  if (mode == "1d") return {size};
  if (mode == "2d") {
    int q = 1;
    while (q * q < size) ++q;
    return {q, q};
  }
  if (mode == "2.5d") {
    const int depth = tp.value("depth", 1);
    int q = 1;
    while (q * q * depth < size) ++q;
    return {depth, q, q};
  }
  int p = 1;
  while (p * p * p < size) ++p;
  return {p, p, p};
}

int expected_pipeline(const json& parallel) {
  if (!parallel.contains("pipeline")) return 1;
  const json& p = parallel["pipeline"];
  return p.is_object() ? p["size"].get<int>() : p.get<int>();
}

std::vector<std::string> expected_order(const json& parallel) {
  return parallel.contains("order") ? parallel["order"].get<std::vector<std::string>>() : std::vector<std::string>{"dp", "pp", "tp"};
}

int expected_expert(const json& parallel) { return parallel.value("expert", 1); }

// The first mesh axis of "dp", "pp" or "tp" in the job's mesh: the axes in "order", tp expanded, dp
// two axes [edp, ep] with expert parallelism; "edp" and "ep" are those two.
int expected_axis(const json& parallel, const std::string& which) {
  if (which == "edp") return expected_axis(parallel, "dp");
  if (which == "ep") return expected_axis(parallel, "dp") + 1;
  int first = 0;
  for (const std::string& a : expected_order(parallel)) {
    if (a == which) return first;
    first += a == "tp" ? static_cast<int>(expected_tensor_mesh(parallel).size()) : a == "dp" && expected_expert(parallel) > 1 ? 2 : 1;
  }
  throw std::runtime_error("test: no axis " + which);
}

std::vector<int> expected_mesh(const json& manifest, int world) {
  std::vector<int> shape;
  if (manifest.contains("mesh")) {
    if (manifest["mesh"].is_array()) {
      shape = manifest["mesh"].get<std::vector<int>>();
    } else {
      throw std::runtime_error("test: named meshes are checked by their own test");
    }
  } else if (manifest.contains("parallel")) {
    const json& parallel = manifest["parallel"];
    const std::vector<int> tensor = expected_tensor_mesh(parallel);
    int tp = 1;
    for (const int d : tensor) tp *= d;
    const int pp = expected_pipeline(parallel);
    const int dp = world / (pp * tp);  // Colossal-AI: world // (pipeline * tensor)
    for (const std::string& a : expected_order(parallel)) {
      const int ep = expected_expert(parallel);
      if (a == "dp" && ep > 1) shape.push_back(dp / ep), shape.push_back(ep);  // Megatron-Core: ep inner in dp
      if (a == "dp" && ep == 1) shape.push_back(dp);
      if (a == "pp") shape.push_back(pp);
      if (a == "tp") shape.insert(shape.end(), tensor.begin(), tensor.end());
    }
  } else {
    shape = {world};
  }
  if (world == 1) std::fill(shape.begin(), shape.end(), 1);  // one process: every axis of size 1
  return shape;
}

// Layers per stage, re-derived from Colossal-AI's two rules (docs/layouts.md).
int expected_stage_of_layer(int layer, int layers, int stages, const std::string& rule) {
  std::vector<int> counts(static_cast<std::size_t>(stages), layers / stages);
  const int rest = layers % stages;
  if (rule == "hybrid") {
    for (int s = stages / 2 - rest / 2; s < stages / 2 - rest / 2 + rest; ++s) ++counts[static_cast<std::size_t>(s)];
  } else {
    for (int s = stages - rest; s < stages; ++s) ++counts[static_cast<std::size_t>(s)];
  }
  for (int s = 0, end = 0; s < stages; ++s) {
    end += counts[static_cast<std::size_t>(s)];
    if (layer < end) return s;
  }
  throw std::runtime_error("test: layer beyond the pipeline");
}

using DimAxes = std::vector<std::vector<int>>;

// The presets of docs/layouts.md, as dim_partition_dict per mode.
DimAxes preset_layout(const std::string& mode, const std::string& name, std::size_t tensor_rank) {
  DimAxes axes(tensor_rank);
  auto set = [&](std::size_t dim, std::vector<int> a) {
    if (dim < axes.size()) axes[dim] = std::move(a);
  };
  if (name == "replicate") return axes;
  if (mode == "1d") {
    if (name == "linear_col" || name == "linear_col_bias" || name == "vocab_embedding" || name == "vocab_classifier" ||
        name == "vocab_classifier_bias") set(0, {0});
    else if (name == "linear_row" || name == "embedding" || name == "classifier") set(1, {0});
    else if (name == "linear_row_bias" || name == "classifier_bias") {}
    else throw std::runtime_error("test: unknown 1d preset " + name);
  } else if (mode == "2d") {
    if (name == "linear") set(0, {0}), set(1, {1});
    else if (name == "linear_bias" || name == "layernorm") set(0, {1, 0});
    else throw std::runtime_error("test: unknown 2d preset " + name);
  } else if (mode == "2.5d") {
    if (name == "linear") set(0, {1}), set(1, {2});
    else if (name == "linear_bias" || name == "layernorm") set(0, {2});
    else throw std::runtime_error("test: unknown 2.5d preset " + name);
  } else if (mode == "3d") {
    if (name == "linear") set(0, {0, 2}), set(1, {1});
    else if (name == "linear_bias" || name == "layernorm_swapped") set(0, {1});
    else if (name == "linear_swapped") set(0, {1, 2}), set(1, {0});
    else if (name == "linear_bias_swapped" || name == "layernorm") set(0, {0});
    else throw std::runtime_error("test: unknown 3d preset " + name);
  } else {
    throw std::runtime_error("test: preset " + name + " without a parallel mode");
  }
  return axes;
}

DimAxes expected_layout(const json& manifest, const json& tensor, std::size_t tensor_rank) {
  // A stack of experts ("expert": true): the layout is each one's, shape[1:]. (A whole expert,
  // {"index": e, "of": N}, is a plain matrix.)
  const bool expert = tensor.contains("expert") && tensor["expert"].is_boolean() && tensor["expert"].get<bool>();
  DimAxes axes(tensor_rank);
  if (tensor.contains("layout") && tensor["layout"].is_string()) {
    const bool parallel = manifest.contains("parallel");
    const std::string mode = parallel && manifest["parallel"].contains("tensor") ? manifest["parallel"]["tensor"]["mode"].get<std::string>() : "";
    axes = preset_layout(mode, tensor["layout"].get<std::string>(), expert ? tensor_rank - 1 : tensor_rank);
    if (expert) axes.insert(axes.begin(), std::vector<int>{});
    // The presets name tensor-parallel axes: on the job's mesh they come after those before "tp".
    const int offset = parallel ? expected_axis(manifest["parallel"], "tp") : 0;
    for (auto& list : axes) {
      for (int& a : list) a += offset;
    }
  } else if (tensor.contains("layout")) {
    for (const auto& [dim, list] : tensor["layout"]["shard"].items()) {
      for (const json& axis : list) {
        // A named axis of "parallel": "dp", "pp", "ep", "edp", or "tp" (a one-axis tensor part).
        axes.at(std::stoul(dim)).push_back(axis.is_string() ? expected_axis(manifest["parallel"], axis.get<std::string>()) : axis.get<int>());
      }
    }
  }
  if (expert) axes[0].insert(axes[0].begin(), expected_axis(manifest["parallel"], "ep"));
  return axes;
}

std::vector<int> coordinates_of(int rank, const std::vector<int>& mesh) {
  std::vector<int> c(mesh.size());
  for (std::size_t a = mesh.size(); a-- > 0;) {
    c[a] = rank % mesh[a];
    rank /= mesh[a];
  }
  return c;
}

struct Whole {
  const ManifestTensor* tensor;
  DimAxes axes;  // per tensor dimension
  std::vector<std::byte> bytes;  // single-process fill of the whole tensor
  // The axes along which only some coordinates hold the tensor: the pipeline stages that hold it,
  // the expert rank of a whole expert. {axis, coordinates, is the stage axis}.
  struct Held {
    int axis;
    std::vector<int> coordinates;
    bool stages;
  };
  std::vector<Held> held;
  std::string partition = "none";   // "zero3", "fsdp2": over the data axes the layout does not split
  std::vector<int> partition_axes;
  // "fused": {"dim": d, "parts": k}: the boxes are of the space, the shape with d as (k, n / k), whose
  // parts dimension nothing splits (each part split as d is); stored with the two merged back.
  std::optional<FusedParts> fused;
  Shape space;
  DimAxes space_axes;
};

// The stored shape of a box of the space: the fused pair merged back.
Shape merged(const Whole& w, Shape extent) {
  if (!w.fused || extent.size() <= w.fused->dim + 1) return extent;
  const std::size_t d = w.fused->dim;
  extent[d] *= extent[d + 1];
  extent.erase(extent.begin() + static_cast<std::ptrdiff_t>(d) + 1);
  return extent;
}

// A rank's part of a partition over `axes`: row-major over them; and the number of parts.
std::pair<Index, Index> partition_part(const Whole& w, const std::vector<int>& mesh, int rank) {
  const std::vector<int> c = coordinates_of(rank, mesh);
  Index parts = 1, part = 0;
  for (const int a : w.partition_axes) {
    parts *= mesh[static_cast<std::size_t>(a)];
    part = part * mesh[static_cast<std::size_t>(a)] + c[static_cast<std::size_t>(a)];
  }
  return {part, parts};
}

// DeepSpeed ZeRO-3 (deepspeed/runtime/zero/partition_parameters.py, Init._partition_param), written
// as it computes it: pad to a multiple of the group, equal partitions, rank r's from r * size.
struct ZeroRange {
  Index first = 0, count = 0, partition = 0;
};
ZeroRange expected_zero3(Index numel, Index parts, Index index) {
  const Index remainder = numel % parts;
  const Index padding = remainder ? parts - remainder : 0;  // _padding_size
  const Index aligned = numel + padding;                    // _aligned_size
  const Index partition = aligned / parts;                  // partition_size = tensor_size // num_partitions
  const Index start = partition * index;                    // partition_size * get_partition_rank()
  const Index count = start < numel ? std::min(partition, numel - start) : 0;  // elems_to_copy past the end
  return ZeroRange{std::min(start, numel), count, partition};
}

// Whether `rank` holds the tensor at all: on each held axis (of more than one coordinate) its
// coordinate is one of those that hold it.
bool expected_holds(const Whole& w, const std::vector<int>& mesh, int rank) {
  const std::vector<int> c = coordinates_of(rank, mesh);
  for (const Whole::Held& h : w.held) {
    const auto a = static_cast<std::size_t>(h.axis);
    if (mesh[a] > 1 && std::find(h.coordinates.begin(), h.coordinates.end(), c[a]) == h.coordinates.end()) return false;
  }
  return true;
}

// The box of `rank`: per dimension, torch.chunk into prod(mesh[axes]) parts, part number the
// coordinates along those axes read major first.
Box expected_box(const Shape&, const Whole& w, const std::vector<int>& mesh, int rank) {
  const Shape& shape = w.space;  // a box of the space (the tensor's shape unless a dimension is fused)
  const DimAxes& axes = w.space_axes;
  const std::vector<int> c = coordinates_of(rank, mesh);
  Box box;
  if (!expected_holds(w, mesh, rank)) return Box{std::vector<Index>(shape.size(), 0), std::vector<Index>(shape.size(), 0)};
  for (std::size_t d = 0; d < shape.size(); ++d) {
    Index parts = 1, part = 0;
    for (int a : axes[d]) {
      parts *= mesh[static_cast<std::size_t>(a)];
      part = part * mesh[static_cast<std::size_t>(a)] + c[static_cast<std::size_t>(a)];
    }
    const Index n = shape[d];
    const Index chunk = (n + parts - 1) / parts;
    const Index start = std::min(part * chunk, n);
    box.start.push_back(start);
    box.extent.push_back(std::min(chunk, n - start));
  }
  if (w.partition == "fsdp2") {  // FSDP2: torch.chunk of the tensor-parallel box's dimension 0
    const auto [part, parts] = partition_part(w, mesh, rank);
    const Index n = box.extent[0];
    const Index chunk = (n + parts - 1) / parts;
    const Index start = std::min(part * chunk, n);
    box.start[0] += start;
    box.extent[0] = std::min(chunk, n - start);
  }
  return box;
}

// The range of `rank`'s box it holds, in the box's row-major order: all of it, or its zero3 range.
ZeroRange expected_range(const Shape& shape, const Whole& w, const std::vector<int>& mesh, int rank) {
  const Box box = expected_box(shape, w, mesh, rank);
  const Index n = expected_holds(w, mesh, rank) ? count_of(box.extent) : 0;
  if (w.partition != "zero3") return ZeroRange{0, n, n};
  const auto [part, parts] = partition_part(w, mesh, rank);
  return expected_zero3(n, parts, part);
}

// f(local index, global flat index) for every element `rank` holds, in the order it stores them.
template <class F>
void for_each_held(const Shape& shape, const Whole& w, const std::vector<int>& mesh, int rank, F f) {
  if (!expected_holds(w, mesh, rank)) return;
  const Box box = expected_box(shape, w, mesh, rank);
  const ZeroRange range = expected_range(shape, w, mesh, rank);
  for_each_in_box(w.space, box, [&](Index i, Index flat) {  // a flat index is the same in the space
    if (i >= range.first && i < range.first + range.count) f(i - range.first, flat);
  });
}

bool same_box(const Box& a, const Box& b) { return a.start == b.start && a.extent == b.extent; }

// Number of ranks holding each element: the mesh axes the layout does not use.
// (On a held axis only the coordinates that hold the tensor.)
int expected_replicas(const Whole& w, const std::vector<int>& mesh) {
  int replicas = 1;
  for (std::size_t a = 0; a < mesh.size(); ++a) {
    bool used = false;
    for (const auto& list : w.axes) used = used || std::find(list.begin(), list.end(), static_cast<int>(a)) != list.end();
    used = used || std::find(w.partition_axes.begin(), w.partition_axes.end(), static_cast<int>(a)) != w.partition_axes.end();
    if (used) continue;
    int along = mesh[a];
    for (const Whole::Held& h : w.held) {
      if (h.axis == static_cast<int>(a) && mesh[a] > 1) along = static_cast<int>(h.coordinates.size());
    }
    replicas *= along;
  }
  return replicas;
}



// ---- The checks ----

void check_mesh_and_layouts(const Manifest& manifest, const json& raw, const ProcessMesh& mesh,
                            const std::vector<Whole>& wholes) {
  const std::vector<int> want_mesh = expected_mesh(raw, g_world);
  expect(mesh.shape() == want_mesh, "manifest_mesh is " + mesh.to_string() + ", expected " + join(want_mesh));
  expect(mesh.size() == g_world, "mesh " + mesh.to_string() + " has " + std::to_string(mesh.size()) + " ranks, world is " +
                                     std::to_string(g_world));
  for (const Whole& w : wholes) {
    std::vector<HeldAlong> held;
    for (const Whole::Held& h : w.held) {
      held.push_back(HeldAlong{h.stages ? HeldAlong::Kind::stages : HeldAlong::Kind::expert, h.axis, h.coordinates});
    }
    std::sort(held.begin(), held.end(), [](const HeldAlong& a, const HeldAlong& b) { return a.axis < b.axis; });
    TensorLayout want(w.axes, held);
    want.fused = w.fused;
    want.partition = parse_data_partition(w.partition);
    want.partition_axes = w.partition_axes;
    expect(w.tensor->layout == want, "tensor '" + w.tensor->name + "': layout " + w.tensor->layout.to_string() + ", expected " +
                                         want.to_string());
  }
  (void)manifest;
}

// Each rank's fill_local box and bytes against the whole-tensor fill.
void check_fill_local(const Manifest& manifest, const ProcessMesh& mesh, const std::vector<Whole>& wholes) {
  for (const Whole& w : wholes) {
    const ManifestTensor& t = *w.tensor;
    const std::size_t size = dtype_size(t.dtype);
    const Box want = expected_box(t.shape, w, mesh.shape(), g_rank);
    const ZeroRange range = expected_range(t.shape, w, mesh.shape(), g_rank);
    const bool held = expected_holds(w, mesh.shape(), g_rank);  // another stage's tensor: nothing (a scalar too)
    // Under zero3 twice: the held elements alone, and DeepSpeed's whole partition (padding zeroed).
    for (const bool padded : w.partition == "zero3" ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
      const Index elements = held ? (padded ? range.partition : range.count) : 0;
      std::vector<std::byte> local(static_cast<std::size_t>(elements) * size, std::byte{0x5A});
      Holding got;
      try {
        got = mpi::fill_local(MPI_COMM_WORLD, manifest.seed, t.spec(), t.layout, mesh, local);
      } catch (const Error& e) {
        expect(false, "tensor '" + t.name + "': fill_local threw: " + e.what());
        continue;
      }
      if (!expect(same_box(got.box, want), "tensor '" + t.name + "': fill_local box " + box_text(got.box) + ", expected " + box_text(want))) {
        continue;
      }
      if (held && !expect(got.first == range.first && got.count == range.count && (w.partition != "zero3" || got.buffer == range.partition),
                          "tensor '" + t.name + "': holds [" + std::to_string(got.first) + ", +" + std::to_string(got.count) + ") of its box (partition " +
                              std::to_string(got.buffer) + "), expected [" + std::to_string(range.first) + ", +" + std::to_string(range.count) +
                              ") (partition " + std::to_string(range.partition) + ")")) {
        continue;
      }
      expect(holds(t.layout, mesh, g_rank) == held, "tensor '" + t.name + "': holds() disagrees");
      if (!held) continue;
      expect(same_box(local_box(t.shape, t.layout, mesh, g_rank), want), "tensor '" + t.name + "': local_box disagrees");
      Index first_bad = -1, bad_flat = -1, bad = 0;
      for_each_held(t.shape, w, mesh.shape(), g_rank, [&](Index i, Index flat) {
        if (std::memcmp(local.data() + i * size, w.bytes.data() + flat * size, size) != 0) {
          if (first_bad < 0) first_bad = i, bad_flat = flat;
          ++bad;
        }
      });
      expect(bad == 0, "tensor '" + t.name + "' (" + std::string(dtype_name(t.dtype)) + "): fill_local differs from the whole fill at " +
                           std::to_string(bad) + " elements, first at local index " + std::to_string(first_bad) +
                           " = global flat index " + std::to_string(bad_flat));
      // The same through the manifest's name (fill_local(comm, manifest, name, out)).
      std::vector<std::byte> by_name(local.size());
      (void)mpi::fill_local(MPI_COMM_WORLD, manifest, t.name, by_name);
      expect(by_name == local, "tensor '" + t.name + "': fill_local by name differs from fill_local by spec and layout");
      const bool zero_padding = std::all_of(local.begin() + static_cast<std::ptrdiff_t>(range.count * static_cast<Index>(size)), local.end(),
                                            [](std::byte b) { return b == std::byte{0}; });
      expect(zero_padding, "tensor '" + t.name + "': the padding of the zero3 partition is not zero");
    }
  }
  // A mesh of the wrong size is refused.
  const Whole& w = wholes.front();
  std::vector<std::byte> scratch(static_cast<std::size_t>(count_of(w.tensor->shape)) * dtype_size(w.tensor->dtype));
  bool refused = false;
  try {
    (void)mpi::fill_local(MPI_COMM_WORLD, manifest.seed, w.tensor->spec(), TensorLayout::replicated(w.tensor->shape.size()),
                          ProcessMesh({g_world + 1}), scratch);
  } catch (const Error& e) {
    refused = e.kind() == ErrorKind::invalid_argument;
  }
  expect(refused, "fill_local with a mesh of " + std::to_string(g_world + 1) + " ranks throws invalid_argument");
}

// Pure layout functions on rank 0: tiling, replication, is_writer, owners, for every rank.
void check_tiling(const ProcessMesh& mesh, const std::vector<Whole>& wholes) {
  if (g_rank != 0) return;
  for (const Whole& w : wholes) {
    const ManifestTensor& t = *w.tensor;
    const Index n = count_of(t.shape);
    const int replicas = expected_replicas(w, mesh.shape());
    std::vector<int> holders(static_cast<std::size_t>(n), 0), writers(static_cast<std::size_t>(n), 0);
    std::vector<std::vector<int>> holder_list(static_cast<std::size_t>(n));
    for (int r = 0; r < mesh.size(); ++r) {
      const bool writer = is_writer(t.layout, mesh, r, t.stream);
      if (!expected_holds(w, mesh.shape(), r)) {
        expect(!writer, "tensor '" + t.name + "': rank " + std::to_string(r) + " of another stage is a writer");
        continue;
      }
      for_each_held(t.shape, w, mesh.shape(), r, [&](Index, Index flat) {
        ++holders[static_cast<std::size_t>(flat)];
        writers[static_cast<std::size_t>(flat)] += writer ? 1 : 0;
        holder_list[static_cast<std::size_t>(flat)].push_back(r);
      });
    }
    Index wrong_holders = 0, wrong_writers = 0, wrong_owners = 0;
    Index first_holders = -1, first_writers = -1, first_owners = -1;
    const Index step = std::max<Index>(1, n / 997);  // owners() on a sample
    for (Index i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (holders[k] != replicas && wrong_holders++ == 0) first_holders = i;
      if (writers[k] != 1 && wrong_writers++ == 0) first_writers = i;
      if (i % step == 0 || i == n - 1) {
        const std::vector<Index> index = unflatten(t.shape, i);
        if (owners(t.shape, t.layout, mesh, index) != holder_list[k] && wrong_owners++ == 0) first_owners = i;
      }
    }
    expect(wrong_holders == 0, "tensor '" + t.name + "': " + std::to_string(wrong_holders) + " elements not held by exactly " +
                                   std::to_string(replicas) + " ranks (first flat index " + std::to_string(first_holders) + ")");
    expect(wrong_writers == 0, "tensor '" + t.name + "': " + std::to_string(wrong_writers) +
                                   " elements without exactly one writer (first flat index " + std::to_string(first_writers) + ")");
    expect(wrong_owners == 0, "tensor '" + t.name + "': owners() differs from the boxes at " + std::to_string(wrong_owners) +
                                  " sampled elements (first flat index " + std::to_string(first_owners) + ")");
  }
}

bool any_temporary(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp") != std::string::npos) return true;
  }
  return false;
}

// Where an element's bytes are in a checkpoint file.
std::uint64_t element_offset(const fs::path& file, const std::string& tensor, Index flat, std::size_t size) {
  const SafetensorsReader reader(file);
  return reader.data_start() + reader.find(tensor)->begin + static_cast<std::uint64_t>(flat) * size;
}

// Corrupts the given elements of `file` (rank 0), runs mpi::verify_checkpoint and expects the
// mismatch (tensor, flat index) on every rank; then restores the file.
void expect_corruption_found(const Manifest& manifest, const fs::path& file,
                             const std::vector<std::pair<const ManifestTensor*, Index>>& corrupt,
                             const std::pair<const ManifestTensor*, Index>& expected) {
  std::vector<std::uint64_t> offsets;
  if (g_rank == 0) {
    for (const auto& [t, flat] : corrupt) {
      // The most significant byte of the element (little-endian): changes the value visibly.
      offsets.push_back(element_offset(file, t->name, flat, dtype_size(t->dtype)) + dtype_size(t->dtype) - 1);
      flip_byte(file, offsets.back());
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  std::string where;
  for (const auto& [t, flat] : corrupt) where += " '" + t->name + "'[" + std::to_string(flat) + "]";
  VerifyResult result;
  const auto error = collective("verify_checkpoint after corrupting" + where,
                                [&] { result = mpi::verify_checkpoint(MPI_COMM_WORLD, manifest, file); });
  if (!error) {
    const std::string got = (result.tensor ? "'" + *result.tensor + "'" : "no tensor") + " index " +
                            (result.index ? std::to_string(*result.index) : "none");
    expect(!result.match, "verify_checkpoint reports a mismatch after corrupting" + where);
    expect(result.tensor == expected.first->name && result.index == expected.second,
           "verify_checkpoint after corrupting" + where + ": reported " + got + ", expected '" + expected.first->name +
               "' index " + std::to_string(expected.second) + " (message: " + result.message + ")");
    expect(same_everywhere(result.message), "verify_checkpoint after corrupting" + where + ": same message on every rank");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank == 0) {
    for (std::uint64_t offset : offsets) flip_byte(file, offset);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

void check_global_file(const Manifest& manifest, const fs::path& scratch, const std::vector<Whole>& wholes) {
  const fs::path single = scratch / "single.safetensors";
  const fs::path shared = scratch / "collective.safetensors";
  Index total = 0;
  for (const Whole& w : wholes) total += count_of(w.tensor->shape);

  std::optional<Error> single_error;
  if (g_rank == 0) {
    try {
      (void)write_checkpoint(manifest, single, overwriting());
    } catch (const Error& e) {
      single_error = e;
    }
    expect(!single_error, "single-process write_checkpoint: " + std::string(single_error ? single_error->what() : ""));
  }
  WriteStats stats;
  MPI_Barrier(MPI_COMM_WORLD);
  detail::reset_generated_elements();
  const auto written = collective("mpi::write_checkpoint", [&] { stats = mpi::write_checkpoint(MPI_COMM_WORLD, manifest, shared, overwriting()); });
  const std::int64_t generated = detail::generated_elements();
  expect(!written, "mpi::write_checkpoint succeeds: " + std::string(written ? written->what() : ""));
  if (written) return;
  // Each rank computes exactly the elements of its byte range of the file (docs/architecture.md, "The
  // write plan"): the file split at multiples of A bytes (A = 1 MiB when every rank gets at least
  // 64 MiB, else 4 KiB), rank r taking units [U*r/W, U*(r+1)/W) of U = ceil(size / A), re-derived here
  // from the single-process file's own header.
  {
    const std::uint64_t size = fs::file_size(shared);
    const std::uint64_t a = size / static_cast<std::uint64_t>(g_world) >= (std::uint64_t{64} << 20) ? (std::uint64_t{1} << 20) : 4096;
    const std::uint64_t units = (size + a - 1) / a;
    const std::uint64_t begin = std::min(size, units * static_cast<std::uint64_t>(g_rank) / static_cast<std::uint64_t>(g_world) * a);
    const std::uint64_t end = std::min(size, units * static_cast<std::uint64_t>(g_rank + 1) / static_cast<std::uint64_t>(g_world) * a);
    const SafetensorsReader reader(shared);
    Index writes = 0;
    for (const SafetensorsTensor& t : reader.tensors()) {
      const std::uint64_t b = std::max(begin, reader.data_start() + t.begin), e = std::min(end, reader.data_start() + t.end);
      if (b < e) writes += static_cast<Index>((e - b) / dtype_size(t.dtype));
    }
    expect(generated == writes, "mpi::write_checkpoint: rank " + std::to_string(g_rank) + " generated " + std::to_string(generated) +
                                    " elements, its byte range [" + std::to_string(begin) + ", " + std::to_string(end) + ") holds " +
                                    std::to_string(writes));
  }
  long long mine = stats.elements, elements = 0;
  MPI_Allreduce(&mine, &elements, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  expect(elements == total, "mpi::write_checkpoint: the ranks wrote " + std::to_string(elements) + " elements in all, the manifest has " +
                                std::to_string(total));
  MPI_Barrier(MPI_COMM_WORLD);

  if (g_rank == 0) {
    const auto a = read_file(single), b = read_file(shared);
    std::size_t at = 0;
    while (at < std::min(a.size(), b.size()) && a[at] == b[at]) ++at;
    expect(a.size() == b.size() && at == a.size(),
           "collective file (" + std::to_string(b.size()) + " bytes) differs from the single-process file (" +
               std::to_string(a.size()) + " bytes) at byte " + std::to_string(at));
    expect(!any_temporary(scratch), "no temporary file left in " + scratch.string() + " after mpi::write_checkpoint");
    const VerifyResult r = verify_checkpoint(manifest, shared);
    expect(r.match, "single-process verify_checkpoint of the collective file: " + r.message);
  }

  // Refusing to overwrite: the same error on every rank, the file untouched.
  const auto refused = collective("mpi::write_checkpoint without overwrite",
                                  [&] { (void)mpi::write_checkpoint(MPI_COMM_WORLD, manifest, shared); });
  expect(refused.has_value() && refused->kind() == ErrorKind::io,
         "mpi::write_checkpoint onto an existing file without overwrite throws Error(io) on every rank");

  VerifyResult result;
  const auto verified = collective("mpi::verify_checkpoint", [&] { result = mpi::verify_checkpoint(MPI_COMM_WORLD, manifest, shared); });
  if (!verified) {
    expect(result.match, "mpi::verify_checkpoint of the collective file matches: " + result.message);
    expect(result.elements_checked == total, "mpi::verify_checkpoint checked " + std::to_string(result.elements_checked) +
                                                 " elements, the manifest has " + std::to_string(total));
    expect(same_everywhere(result.message), "mpi::verify_checkpoint: same message on every rank");
  } else {
    expect(false, std::string("mpi::verify_checkpoint threw: ") + verified->what());
  }

  // A missing file: the same Error(io) on every rank.
  const auto missing = collective("mpi::verify_checkpoint of a missing file",
                                  [&] { (void)mpi::verify_checkpoint(MPI_COMM_WORLD, manifest, scratch / "missing.safetensors"); });
  expect(missing.has_value() && missing->kind() == ErrorKind::io, "mpi::verify_checkpoint of a missing file throws Error(io)");

  // Data corruption, per non-empty tensor: its last element (in the last holder's box), and its first.
  std::vector<const ManifestTensor*> in_file_order;
  {
    const SafetensorsReader reader(shared);
    for (const SafetensorsTensor& entry : reader.tensors()) {
      for (const Whole& w : wholes) {
        if (w.tensor->name == entry.name && count_of(w.tensor->shape) > 0) in_file_order.push_back(w.tensor);
      }
    }
  }
  for (const ManifestTensor* t : in_file_order) {
    const Index n = count_of(t->shape);
    expect_corruption_found(manifest, shared, {{t, n - 1}}, {t, n - 1});
    if (n > 2) expect_corruption_found(manifest, shared, {{t, n / 2}}, {t, n / 2});
  }
  // Two corruptions: the first in file order wins, whichever rank saw it.
  if (in_file_order.size() >= 2) {
    const ManifestTensor* first = in_file_order.front();
    const ManifestTensor* last = in_file_order.back();
    expect_corruption_found(manifest, shared, {{last, 0}, {first, count_of(first->shape) - 1}}, {first, count_of(first->shape) - 1});
  } else if (in_file_order.size() == 1 && count_of(in_file_order[0]->shape) > 1) {
    const ManifestTensor* t = in_file_order[0];
    expect_corruption_found(manifest, shared, {{t, count_of(t->shape) - 1}, {t, 0}}, {t, 0});
  }

  // The header: a corrupted byte is a mismatch (not an exception).
  if (g_rank == 0) flip_byte(shared, 9, 0x01);
  MPI_Barrier(MPI_COMM_WORLD);
  const auto header = collective("verify_checkpoint with a corrupted header",
                                 [&] { result = mpi::verify_checkpoint(MPI_COMM_WORLD, manifest, shared); });
  expect(!header && !result.match, "mpi::verify_checkpoint reports a corrupted header as a mismatch");
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank == 0) flip_byte(shared, 9, 0x01);
  MPI_Barrier(MPI_COMM_WORLD);
  const auto restored = collective("verify_checkpoint after restoring",
                                   [&] { result = mpi::verify_checkpoint(MPI_COMM_WORLD, manifest, shared); });
  expect(!restored && result.match, "mpi::verify_checkpoint matches again once the file is restored");
}

// The Hugging Face directory (mpi::write_output, OutputFormat::hf), sharded at a third of the
// tensors' bytes so that there are several shards: the same files, byte for byte, as one process
// writes; verify matches, and names the shard, tensor and index of a corrupted element (faults:
// tests/mpi/faults.sh).
void check_hf_directory(const Manifest& manifest, const fs::path& scratch) {
  const fs::path single = scratch / "hf-single";
  const fs::path shared = scratch / "hf-collective";
  std::uint64_t bytes = 0;
  for (const ManifestTensor& t : manifest.tensors) bytes += static_cast<std::uint64_t>(count_of(t.shape)) * dtype_size(t.dtype);
  const OutputRequest request = output_request(OutputFormat::hf, std::max<std::uint64_t>(1, bytes / 3));
  if (g_rank == 0) {
    try {
      (void)write_output(manifest, single, request, WriteOptions{true, 2, {}});
    } catch (const Error& e) {
      expect(false, std::string("single-process write_output hf: ") + e.what());
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const auto written = collective("mpi::write_output hf", [&] {
    (void)mpi::write_output(MPI_COMM_WORLD, manifest, shared, request, WriteOptions{true, 1, {}});
  });
  expect(!written, "mpi::write_output hf succeeds: " + std::string(written ? written->what() : ""));
  if (written) return;
  if (g_rank == 0) {
    std::vector<std::string> a, b;
    for (const auto& e : fs::directory_iterator(single)) a.push_back(e.path().filename().string());
    for (const auto& e : fs::directory_iterator(shared)) b.push_back(e.path().filename().string());
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    expect(a == b, "the collective hf directory holds the same files as the single-process one (" + std::to_string(b.size()) + " vs " +
                       std::to_string(a.size()) + ")");
    for (const std::string& name : a) {
      if (std::find(b.begin(), b.end(), name) == b.end()) continue;
      expect(read_file(single / name) == read_file(shared / name), "hf file " + name + " is byte-identical to the single-process one");
    }
    expect(!any_temporary(scratch), "no staging directory left in " + scratch.string() + " after mpi::write_output hf");
  }
  VerifyResult result;
  const auto verified = collective("mpi::verify_output hf", [&] { result = mpi::verify_output(MPI_COMM_WORLD, manifest, shared, request); });
  expect(!verified && result.match, "mpi::verify_output hf matches: " + (verified ? std::string(verified->what()) : result.message));
  // Read as its index splits it (verify without --max-shard-size): rank 0 reads the index for all.
  OutputRequest as_found = output_request(OutputFormat::hf);
  as_found.split_as_found = true;
  const auto found = collective("mpi::verify_output hf, split as found", [&] { result = mpi::verify_output(MPI_COMM_WORLD, manifest, shared, as_found); });
  expect(!found && result.match, "mpi::verify_output hf with the split as found matches: " + (found ? std::string(found->what()) : result.message));
  // The last element of the last tensor of the last shard, corrupted.
  std::string last_file;
  const ManifestTensor* last = nullptr;
  for (const auto& e : fs::directory_iterator(shared)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".safetensors") && name > last_file) last_file = name;
  }
  {
    const SafetensorsReader reader(shared / last_file);
    for (const SafetensorsTensor& entry : reader.tensors()) {
      for (const ManifestTensor& t : manifest.tensors) {
        if (t.name == entry.name && count_of(t.shape) > 0) last = &t;
      }
    }
  }
  if (last != nullptr) {
    const Index n = count_of(last->shape);
    const std::uint64_t offset = element_offset(shared / last_file, last->name, n - 1, dtype_size(last->dtype));
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) flip_byte(shared / last_file, offset);
    MPI_Barrier(MPI_COMM_WORLD);
    const auto checked = collective("mpi::verify_output hf, corrupted", [&] { result = mpi::verify_output(MPI_COMM_WORLD, manifest, shared, request); });
    expect(!checked && !result.match && result.tensor == last->name && result.index == n - 1 &&
               result.message.find(last_file) != std::string::npos,
           "mpi::verify_output hf reports the corrupted element: " + result.message);
    expect(same_everywhere(result.message), "mpi::verify_output hf: same message on every rank");
    const VerifyResult by_size = result;
    const auto checked_as_found = collective("mpi::verify_output hf, corrupted, split as found",
                                             [&] { result = mpi::verify_output(MPI_COMM_WORLD, manifest, shared, as_found); });
    expect(!checked_as_found && !result.match && result.message == by_size.message,
           "mpi::verify_output hf with the split as found reports the same difference: " + result.message);
  }
}

void check_rank_files(const Manifest& manifest, const fs::path& scratch, const ProcessMesh& mesh,
                      const std::vector<Whole>& wholes) {
  const fs::path dir = scratch / "ranks";
  if (g_rank == 0) fs::create_directories(dir);  // the library writes into an existing directory
  MPI_Barrier(MPI_COMM_WORLD);
  detail::reset_generated_elements();
  const auto written = collective("mpi::write_rank_checkpoints", [&] {
    (void)mpi::write_rank_checkpoints(MPI_COMM_WORLD, manifest, dir, overwriting());
  });
  const std::int64_t generated = detail::generated_elements();
  expect(!written, "mpi::write_rank_checkpoints succeeds: " + std::string(written ? written->what() : ""));
  if (written) return;
  // A rank computes exactly what it holds: nothing of another stage's tensors, only its partitions.
  Index held_elements = 0, other_stages = 0;
  for (const Whole& w : wholes) {
    held_elements += expected_range(w.tensor->shape, w, mesh.shape(), g_rank).count;
    if (!expected_holds(w, mesh.shape(), g_rank)) other_stages += count_of(w.tensor->shape);
  }
  expect(generated == held_elements, "mpi::write_rank_checkpoints: rank " + std::to_string(g_rank) + " generated " +
                                         std::to_string(generated) + " elements, it holds " + std::to_string(held_elements) +
                                         " (the tensors of other stages have " + std::to_string(other_stages) + ")");
  MPI_Barrier(MPI_COMM_WORLD);

  if (g_rank == 0) {
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
      (void)entry;
      ++files;
    }
    expect(files == static_cast<std::size_t>(g_world), dir.string() + " holds " + std::to_string(files) + " files, expected " +
                                                           std::to_string(g_world) + " (one per rank, no temporary)");
    // Reassemble every tensor from the rank files.
    std::map<std::string, std::vector<std::byte>> assembled;
    std::map<std::string, std::vector<int>> held;
    for (const Whole& w : wholes) {
      assembled[w.tensor->name].assign(w.bytes.size(), std::byte{0});
      held[w.tensor->name].assign(static_cast<std::size_t>(count_of(w.tensor->shape)), 0);
    }
    for (int r = 0; r < g_world; ++r) {
      const fs::path file = dir / rank_file_name(r, g_world);
      const std::string who = file.filename().string();
      std::optional<SafetensorsReader> reader;
      try {
        reader.emplace(file);
      } catch (const Error& e) {
        expect(false, who + ": cannot be read: " + e.what());
        continue;
      }
      const SafetensorsMetadata& meta = reader->metadata();
      const auto get = [&](const char* key) { return meta.count(key) ? meta.at(key) : std::string("<missing>"); };
      expect(get(kMetaRank) == std::to_string(r), who + ": shardinit.rank is " + get(kMetaRank));
      expect(get(kMetaWorld) == std::to_string(g_world), who + ": shardinit.world is " + get(kMetaWorld));
      expect(get(kMetaMesh) == mesh.to_string(), who + ": shardinit.mesh is " + get(kMetaMesh) + ", expected " + mesh.to_string());
      json shards;
      try {
        shards = json::parse(get(kMetaShards));
      } catch (const json::exception& e) {
        expect(false, who + ": shardinit.shards is not JSON: " + e.what());
        continue;
      }
      // Exactly the tensors of the rank's pipeline stage(s).
      std::size_t held_here = 0;
      for (const Whole& w : wholes) held_here += expected_holds(w, mesh.shape(), r) ? 1 : 0;
      expect(shards.is_object() && shards.size() == held_here,
             who + ": shardinit.shards lists " + std::to_string(shards.size()) + " tensors, the rank holds " + std::to_string(held_here));
      expect(reader->tensors().size() == held_here,
             who + ": the file stores " + std::to_string(reader->tensors().size()) + " tensors, the rank holds " + std::to_string(held_here));
      for (const Whole& w : wholes) {
        const ManifestTensor& t = *w.tensor;
        const std::string what = who + " tensor '" + t.name + "'";
        if (!expected_holds(w, mesh.shape(), r)) {
          expect(!shards.contains(t.name) && reader->find(t.name) == nullptr, what + ": another stage's tensor is in the file");
          continue;
        }
        if (!expect(shards.contains(t.name), what + ": missing from shardinit.shards")) continue;
        const json& s = shards[t.name];
        Box box;
        Shape shape;
        try {
          shape = s.at("shape").get<Shape>();
          box.start = s.at("start").get<std::vector<Index>>();
          box.extent = s.at("extent").get<std::vector<Index>>();
        } catch (const json::exception& e) {
          expect(false, what + ": bad shards entry " + s.dump() + ": " + e.what());
          continue;
        }
        if (!expect(shape == t.shape, what + ": global shape " + join(shape) + ", expected " + join(t.shape))) continue;
        const Box want = expected_box(t.shape, w, mesh.shape(), r);
        if (!expect(same_box(box, want), what + ": box " + box_text(box) + ", expected " + box_text(want))) continue;
        const SafetensorsTensor* stored = reader->find(t.name);
        if (!expect(stored != nullptr, what + ": not in the file")) continue;
        expect(stored->dtype == t.dtype, what + ": dtype " + std::string(dtype_name(stored->dtype)));
        const ZeroRange range = expected_range(t.shape, w, mesh.shape(), r);
        if (w.partition == "zero3") {  // stored flat, its range recorded
          const json want_flat = {range.first, range.count};
          expect(s.contains("flat") && s["flat"] == want_flat && s.value("partition", Index{-1}) == range.partition,
                 what + ": records " + s.dump() + ", expected flat " + want_flat.dump() + " and partition " + std::to_string(range.partition));
        }
        const Shape stored_shape = w.partition == "zero3" ? Shape{range.count} : merged(w, box.extent);
        if (w.fused) {
          expect(s.value("fused", json()) == json{w.fused->dim, w.fused->parts}, what + ": records " + s.dump() + ", expected \"fused\": [" +
                                                                                 std::to_string(w.fused->dim) + ", " + std::to_string(w.fused->parts) + "]");
        }
        if (!expect(stored->shape == stored_shape, what + ": stored shape " + join(stored->shape) + ", expected " + join(stored_shape))) {
          continue;
        }
        const std::size_t size = dtype_size(t.dtype);
        std::vector<std::byte> data(static_cast<std::size_t>(range.count) * size);
        if (!data.empty()) reader->read(reader->data_start() + stored->begin, data);
        auto& out = assembled[t.name];
        auto& count = held[t.name];
        Index replica_mismatch = -1;
        for_each_held(t.shape, w, mesh.shape(), r, [&](Index i, Index flat) {
          const auto k = static_cast<std::size_t>(flat);
          if (count[k] > 0 && std::memcmp(out.data() + flat * size, data.data() + i * size, size) != 0 && replica_mismatch < 0) {
            replica_mismatch = flat;
          }
          std::memcpy(out.data() + flat * size, data.data() + i * size, size);
          ++count[k];
        });
        expect(replica_mismatch < 0, what + ": differs from another rank's replica at flat index " + std::to_string(replica_mismatch));
      }
    }
    for (const Whole& w : wholes) {
      const ManifestTensor& t = *w.tensor;
      const std::size_t size = dtype_size(t.dtype);
      const int replicas = expected_replicas(w, mesh.shape());
      const auto& count = held[t.name];
      const auto& out = assembled[t.name];
      Index uncovered = -1, wrong = -1;
      for (std::size_t k = 0; k < count.size(); ++k) {
        if (count[k] != replicas && uncovered < 0) uncovered = static_cast<Index>(k);
        if (std::memcmp(out.data() + k * size, w.bytes.data() + k * size, size) != 0 && wrong < 0) wrong = static_cast<Index>(k);
      }
      expect(uncovered < 0, "reassembled '" + t.name + "': element " + std::to_string(uncovered) + " is not in exactly " +
                                std::to_string(replicas) + " rank files");
      expect(wrong < 0, "reassembled '" + t.name + "' differs from the single-process fill at flat index " + std::to_string(wrong));
    }
  }

  VerifyResult result;
  const auto verified = collective("mpi::verify_rank_checkpoints", [&] { result = mpi::verify_rank_checkpoints(MPI_COMM_WORLD, manifest, dir); });
  expect(!verified && result.match, "mpi::verify_rank_checkpoints matches: " + (verified ? std::string(verified->what()) : result.message));

  // Corrupt the last element of the last rank's last non-empty shard.
  int victim_rank = -1;
  const ManifestTensor* victim = nullptr;
  Index victim_local = -1, victim_flat = -1;
  for (int r = g_world - 1; r >= 0 && victim == nullptr; --r) {
    for (const Whole& w : wholes) {
      const Index n = expected_range(w.tensor->shape, w, mesh.shape(), r).count;
      if (n > 0) {
        victim_rank = r, victim = w.tensor, victim_local = n - 1;
        for_each_held(w.tensor->shape, w, mesh.shape(), r, [&](Index i, Index flat) {
          if (i == n - 1) victim_flat = flat;
        });
      }
    }
  }
  if (victim == nullptr) return;
  const fs::path file = dir / rank_file_name(victim_rank, g_world);
  std::uint64_t offset = 0;
  if (g_rank == 0) {
    offset = element_offset(file, victim->name, victim_local, dtype_size(victim->dtype));
    flip_byte(file, offset);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const auto corrupted = collective("mpi::verify_rank_checkpoints after corrupting " + file.filename().string(),
                                    [&] { result = mpi::verify_rank_checkpoints(MPI_COMM_WORLD, manifest, dir); });
  if (!corrupted) {
    const std::string what = "mpi::verify_rank_checkpoints after corrupting '" + victim->name + "' in " +
                             file.filename().string() + " (local index " + std::to_string(victim_local) + ")";
    expect(!result.match, what + ": reports a mismatch");
    expect(result.tensor == victim->name, what + ": names the tensor (got " + result.tensor.value_or("none") + ")");
    expect(result.index == victim_local || result.index == victim_flat,
           what + ": points at the element (index " + (result.index ? std::to_string(*result.index) : "none") + ")");
    expect(g_world == 1 || result.message.find(file.filename().string()) != std::string::npos,
           what + ": the message names the file: " + result.message);
    expect(same_everywhere(result.message), what + ": same message on every rank");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank == 0) flip_byte(file, offset);
  MPI_Barrier(MPI_COMM_WORLD);
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  bool tp_size_from_world = false;
  std::vector<std::string> positional;
  for (const auto& a : args) {
    if (a == "--tp-size-from-world") tp_size_from_world = true;
    else positional.push_back(a);
  }
  if (positional.size() != 2) {
    if (g_rank == 0) std::fprintf(stderr, "usage: shard_check MANIFEST SCRATCH_DIR [--tp-size-from-world]\n");
    return 2;
  }
  const fs::path manifest_path = positional[0], scratch = positional[1];
  const std::string label = manifest_path.stem().string() + " np" + std::to_string(g_world);

  if (g_rank == 0) {
    fs::remove_all(scratch);
    fs::create_directories(scratch);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  std::ifstream in(manifest_path);
  std::stringstream text;
  text << in.rdbuf();
  json raw = json::parse(text.str());
  if (tp_size_from_world) raw["parallel"]["tensor"]["size"] = g_world;
  const Manifest manifest = parse_manifest(raw.dump(), manifest_path.string());
  const ProcessMesh mesh = manifest_mesh(manifest, g_world);

  std::vector<Whole> wholes;
  for (const ManifestTensor& t : manifest.tensors) {
    const json* entry = nullptr;
    for (const json& j : raw["tensors"]) {
      if (j["name"] == t.name) entry = &j;
    }
    Whole w{&t, expected_layout(raw, *entry, t.shape.size()), {}, {}, "none", {}, std::nullopt, t.shape, {}};
    w.space_axes = w.axes;
    if (entry->contains("fused")) {
      const auto d = (*entry)["fused"]["dim"].get<std::size_t>();
      const auto k = (*entry)["fused"]["parts"].get<Index>();
      w.fused = FusedParts{d, k};
      w.space[d] = t.shape[d] / k;
      w.space.insert(w.space.begin() + static_cast<std::ptrdiff_t>(d), k);
      w.space_axes.insert(w.space_axes.begin() + static_cast<std::ptrdiff_t>(d), std::vector<int>{});
    }
    if (raw.contains("parallel") && expected_pipeline(raw["parallel"]) > 1) {
      const json& parallel = raw["parallel"];
      std::vector<int> stages;
      if (entry->contains("stage")) {
        const json& stage = (*entry)["stage"];
        stages = stage.is_array() ? stage.get<std::vector<int>>() : std::vector<int>{stage.get<int>()};
      } else {
        const json& p = parallel["pipeline"];
        stages = {expected_stage_of_layer((*entry)["layer"], p["layers"], p["size"], p.value("partition", "uniform"))};
      }
      std::sort(stages.begin(), stages.end());
      w.held.push_back({expected_axis(parallel, "pp"), stages, true});
    }
    // A whole expert, {"index": e, "of": N}: on expert rank e / (N / E), Megatron-Core's contiguous
    // blocks of local experts.
    if (raw.contains("parallel") && expected_expert(raw["parallel"]) > 1 && entry->contains("expert") && (*entry)["expert"].is_object()) {
      const json& parallel = raw["parallel"];
      const int per_rank = (*entry)["expert"]["of"].get<int>() / expected_expert(parallel);
      w.held.push_back({expected_axis(parallel, "ep"), {(*entry)["expert"]["index"].get<int>() / per_rank}, false});
    }
    if (raw.contains("parallel")) {
      const json& parallel = raw["parallel"];
      w.partition = entry->value("data_partition", parallel.value("data_partition", std::string("none")));
      if (w.partition != "none") {
        const std::vector<int> data_axes = expected_expert(parallel) > 1 ? std::vector<int>{expected_axis(parallel, "edp"), expected_axis(parallel, "ep")}
                                                                         : std::vector<int>{expected_axis(parallel, "dp")};
        for (const int a : data_axes) {
          bool splits = false;
          for (const auto& list : w.axes) splits = splits || std::find(list.begin(), list.end(), a) != list.end();
          for (const Whole::Held& h : w.held) splits = splits || h.axis == a;  // held on one expert rank: not shared over ep
          if (!splits) w.partition_axes.push_back(a);
        }
      }
    }
    w.bytes.resize(static_cast<std::size_t>(count_of(t.shape)) * dtype_size(t.dtype));
    TensorFiller(manifest.seed, t.spec()).fill_flat(0, count_of(t.shape), w.bytes);
    wholes.push_back(std::move(w));
  }
  if (wholes.empty()) throw std::runtime_error("test manifest has no tensors");

  check_mesh_and_layouts(manifest, raw, mesh, wholes);
  check_fill_local(manifest, mesh, wholes);
  check_tiling(mesh, wholes);
  check_global_file(manifest, scratch, wholes);
  check_hf_directory(manifest, scratch);
  check_rank_files(manifest, scratch, mesh, wholes);

  return report_totals("shard_check: " + label + " (" + std::to_string(wholes.size()) + " tensors, mesh " +
                       mesh.to_string() + ")");
}

}  // namespace

int main(int argc, char** argv) {
  return shardinit::mpi_test::run_mpi_test(argc, argv, [&] { return run(argc, argv); });
}
