#include "shardinit/layout/mesh.hpp"

#include <algorithm>
#include <limits>

#include "shardinit/error.hpp"

namespace shardinit {

namespace {
[[noreturn]] void fail(const std::string& message) { throw Error(ErrorKind::invalid_argument, message); }

std::string ints_to_string(const std::vector<int>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + std::to_string(values[i]);
  return text + "]";
}
}  // namespace

ProcessMesh::ProcessMesh(std::vector<int> shape) : shape_(std::move(shape)) {
  if (shape_.empty()) fail("a process mesh needs at least one dimension");
  long long size = 1;
  for (const int d : shape_) {
    if (d < 1) fail("process mesh " + ints_to_string(shape_) + " has a dimension < 1");
    size *= d;
    if (size > std::numeric_limits<int>::max()) fail("process mesh " + ints_to_string(shape_) + " has too many ranks");
  }
  size_ = static_cast<int>(size);
}

std::vector<int> ProcessMesh::coordinates(int rank) const {
  std::vector<int> coordinates(shape_.size());
  for (std::size_t a = shape_.size(); a-- > 0;) {
    coordinates[a] = rank % shape_[a];
    rank /= shape_[a];
  }
  return coordinates;
}

int ProcessMesh::rank_of(const std::vector<int>& coordinates) const {
  int rank = 0;
  for (std::size_t a = 0; a < shape_.size(); ++a) rank = rank * shape_[a] + coordinates[a];
  return rank;
}

std::string ProcessMesh::to_string() const { return ints_to_string(shape_); }

std::string_view data_partition_name(DataPartition partition) noexcept {
  switch (partition) {
    case DataPartition::none: return "none";
    case DataPartition::zero3: return "zero3";
    case DataPartition::fsdp2: return "fsdp2";
  }
  return "?";
}

DataPartition parse_data_partition(std::string_view text) {
  for (const DataPartition p : {DataPartition::none, DataPartition::zero3, DataPartition::fsdp2}) {
    if (text == data_partition_name(p)) return p;
  }
  fail("unknown data partition \"" + std::string(text) +
       "\" (expected \"none\", \"zero3\": DeepSpeed ZeRO-3's flat partition, or \"fsdp2\": FSDP2's Shard(0))");
}

std::string TensorLayout::to_string() const {
  std::string text;
  for (std::size_t d = 0; d < dim_axes.size(); ++d) {
    if (dim_axes[d].empty()) continue;
    text += (text.empty() ? "{" : ", ") + std::to_string(d) + ": " + ints_to_string(dim_axes[d]);
  }
  text = text.empty() ? "replicated" : text + "}";
  if (fused) text += " fused " + std::to_string(fused->parts) + " along " + std::to_string(fused->dim);
  for (const HeldAlong& h : held_along) {
    text += h.kind == HeldAlong::Kind::stages ? " on stages " + ints_to_string(h.coordinates)
            : h.coordinates.size() == 1       ? " on expert rank " + std::to_string(h.coordinates[0])
                                              : " on expert ranks " + ints_to_string(h.coordinates);
    text += " of axis " + std::to_string(h.axis);
  }
  if (partition != DataPartition::none || !partition_axes.empty()) {
    text += " " + std::string(data_partition_name(partition)) + " over axes " + ints_to_string(partition_axes);
  }
  return text;
}

void check_layout(const TensorLayout& layout, std::size_t tensor_rank, const ProcessMesh& mesh) {
  if (layout.dim_axes.size() != tensor_rank) {
    fail("layout " + layout.to_string() + " describes " + std::to_string(layout.dim_axes.size()) +
         " dimensions, the tensor has " + std::to_string(tensor_rank));
  }
  std::vector<bool> used(mesh.shape().size(), false);
  for (std::size_t d = 0; d < tensor_rank; ++d) {
    for (const int axis : layout.dim_axes[d]) {
      if (axis < 0 || static_cast<std::size_t>(axis) >= used.size()) {
        fail("layout " + layout.to_string() + " splits dimension " + std::to_string(d) + " over mesh axis " +
             std::to_string(axis) + ", but mesh " + mesh.to_string() + " has axes 0.." + std::to_string(used.size() - 1));
      }
      if (used[axis]) fail("layout " + layout.to_string() + " uses mesh axis " + std::to_string(axis) + " twice");
      used[axis] = true;
    }
  }
  // Held-along axes first: partition axes may not be one of them.
  std::vector<bool> held(used.size(), false);
  for (const HeldAlong& h : layout.held_along) {
    if (h.axis < 0 || static_cast<std::size_t>(h.axis) >= used.size() || used[h.axis] || held[h.axis]) {
      fail("layout " + layout.to_string() + ": the held-along axis " + std::to_string(h.axis) + " must be an axis of mesh " +
           mesh.to_string() + " that splits no dimension and is named once");
    }
    held[h.axis] = true;
    if (h.coordinates.empty()) fail("layout " + layout.to_string() + ": a tensor held along axis " + std::to_string(h.axis) + " needs at least one coordinate");
    const int size = mesh.shape()[h.axis];
    if (size == 1) continue;  // one coordinate (one process): it holds everything
    for (std::size_t i = 0; i < h.coordinates.size(); ++i) {
      if (h.coordinates[i] < 0 || h.coordinates[i] >= size || (i > 0 && h.coordinates[i] <= h.coordinates[i - 1])) {
        fail("layout " + layout.to_string() + ": the coordinates along axis " + std::to_string(h.axis) +
             " must be distinct, ascending and below " + std::to_string(size) +
             (h.kind == HeldAlong::Kind::stages ? " (the pipeline size)" : " (the expert parallel size)"));
      }
    }
  }
  if ((layout.partition == DataPartition::none) != layout.partition_axes.empty()) {
    fail("layout " + layout.to_string() + ": a data partition needs its mesh axes, and axes need a partition");
  }
  for (const int axis : layout.partition_axes) {
    if (axis < 0 || static_cast<std::size_t>(axis) >= used.size() || used[axis] || held[axis]) {
      fail("layout " + layout.to_string() + ": partition axis " + std::to_string(axis) + " must be an axis of mesh " +
           mesh.to_string() + " that splits no dimension, is not a held-along axis and is named once");
    }
    used[axis] = true;
  }
  if (layout.partition == DataPartition::fsdp2 && tensor_rank == 0) {
    fail("layout " + layout.to_string() + ": fsdp2 shards dimension 0, and a scalar has none");
  }
  if (layout.fused) {
    if (layout.fused->dim >= tensor_rank || layout.fused->parts < 1) {
      fail("layout " + layout.to_string() + ": a fused dimension must be one of the tensor's " + std::to_string(tensor_rank) +
           ", in at least one part");
    }
    if (layout.fused->dim == 0 && layout.partition == DataPartition::fsdp2) {
      fail("layout " + layout.to_string() + ": fsdp2 chunks dimension 0 of the rank's tensor, which is fused");
    }
  }
}

namespace {

// The layout on its space: the fused dimension's entry becomes two, the parts (split over nothing)
// and each part (split as the dimension was).
std::vector<std::vector<int>> space_axes(const TensorLayout& layout) {
  std::vector<std::vector<int>> axes = layout.dim_axes;
  if (layout.fused) axes.insert(axes.begin() + static_cast<std::ptrdiff_t>(layout.fused->dim), std::vector<int>{});
  return axes;
}

}  // namespace

Shape layout_space(const Shape& shape, const TensorLayout& layout) {
  if (!layout.fused) return shape;
  const auto [dim, parts] = *layout.fused;
  if (dim >= shape.size() || parts < 1 || shape[dim] % parts != 0) {
    fail("layout " + layout.to_string() + ": dimension " + std::to_string(dim) + " of shape " + shape_to_string(shape) +
         " is not " + std::to_string(parts) + " equal parts");
  }
  Shape space = shape;
  space[dim] = shape[dim] / parts;
  space.insert(space.begin() + static_cast<std::ptrdiff_t>(dim), parts);
  return space;
}

bool holds(const TensorLayout& layout, const ProcessMesh& mesh, int rank) {
  if (layout.held_along.empty()) return true;
  const std::vector<int> coordinates = mesh.coordinates(rank);
  return std::all_of(layout.held_along.begin(), layout.held_along.end(), [&](const HeldAlong& h) {
    return mesh.shape()[h.axis] == 1 || std::binary_search(h.coordinates.begin(), h.coordinates.end(), coordinates[h.axis]);
  });
}

Chunk torch_chunk(Index n, Index parts, Index index) {
  // ceil(n / parts), and index * size capped at n, without overflow for n up to 2^63 - 1.
  const Index size = parts == 0 ? n : n / parts + (n % parts != 0 ? 1 : 0);
  const Index start = size == 0 || index > n / size ? n : std::min(n, index * size);
  return Chunk{start, std::min(n - start, size)};
}

Index parts_of_dim(const TensorLayout& layout, std::size_t dim, const ProcessMesh& mesh) {
  Index parts = 1;
  for (const int axis : layout.dim_axes[dim]) parts *= mesh.shape()[axis];
  return parts;
}

Index part_of_dim(const TensorLayout& layout, std::size_t dim, const ProcessMesh& mesh,
                  const std::vector<int>& coordinates) {
  Index part = 0;
  for (const int axis : layout.dim_axes[dim]) part = part * mesh.shape()[axis] + coordinates[axis];
  return part;
}

Index partition_parts(const TensorLayout& layout, const ProcessMesh& mesh) {
  Index parts = 1;
  for (const int axis : layout.partition_axes) parts *= mesh.shape()[axis];
  return parts;
}

Index partition_index(const TensorLayout& layout, const ProcessMesh& mesh, const std::vector<int>& coordinates) {
  Index index = 0;
  for (const int axis : layout.partition_axes) index = index * mesh.shape()[axis] + coordinates[axis];
  return index;
}

FlatPartition zero3_partition(Index numel, Index parts, Index index) {
  // ceil(numel / parts) == (numel + _padding_size) / parts, without forming numel + padding.
  const Index size = numel / parts + (numel % parts != 0 ? 1 : 0);
  const Index start = size == 0 || index > numel / size ? numel : std::min(numel, index * size);
  return FlatPartition{size, start, std::min(size, numel - start)};
}

Box local_box(const Shape& tensor_shape, const TensorLayout& layout, const ProcessMesh& mesh, int rank) {
  const std::vector<int> coordinates = mesh.coordinates(rank);
  const Shape shape = layout_space(tensor_shape, layout);
  Box box{std::vector<Index>(shape.size()), std::vector<Index>(shape.size())};
  if (!holds(layout, mesh, rank)) return box;  // another stage's (or expert rank's) tensor: nothing
  TensorLayout on_space = layout;
  on_space.dim_axes = space_axes(layout);
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const Chunk c = torch_chunk(shape[d], parts_of_dim(on_space, d, mesh), part_of_dim(on_space, d, mesh, coordinates));
    box.start[d] = c.start;
    box.extent[d] = c.extent;
  }
  if (layout.partition == DataPartition::fsdp2) {
    // FSDP2 chunks the tensor-parallel-local tensor (its DTensor's local shard), not the global one.
    const Chunk c = torch_chunk(box.extent[0], partition_parts(layout, mesh), partition_index(layout, mesh, coordinates));
    box.start[0] += c.start;
    box.extent[0] = c.extent;
  }
  return box;
}

std::vector<Box> Holding::boxes() const { return box_range_boxes(box, first, count); }

Shape merge_fused(Shape extent, const TensorLayout& layout) {
  if (layout.fused && extent.size() > layout.fused->dim + 1) {
    const std::size_t d = layout.fused->dim;
    extent[d] *= extent[d + 1];
    extent.erase(extent.begin() + static_cast<std::ptrdiff_t>(d) + 1);
  }
  return extent;
}

Shape Holding::local_shape(const TensorLayout& layout) const { return flat ? Shape{count} : merge_fused(box.extent, layout); }

Holding local_holding(const Shape& shape, const TensorLayout& layout, const ProcessMesh& mesh, int rank) {
  Holding holding;
  holding.space = layout_space(shape, layout);
  holding.box = local_box(shape, layout, mesh, rank);
  if (!holds(layout, mesh, rank)) return holding;
  const Index elements = holding.box.element_count();
  if (layout.partition == DataPartition::zero3) {
    const FlatPartition p = zero3_partition(elements, partition_parts(layout, mesh),
                                            partition_index(layout, mesh, mesh.coordinates(rank)));
    holding.first = p.first;
    holding.count = p.count;
    holding.buffer = p.size;
    holding.flat = true;
  } else {
    holding.count = holding.buffer = elements;
  }
  return holding;
}

std::vector<int> owners(const Shape& shape, const TensorLayout& layout, const ProcessMesh& mesh,
                        const std::vector<Index>& index) {
  std::vector<int> result;
  for (int rank = 0; rank < mesh.size(); ++rank) {
    if (!holds(layout, mesh, rank)) continue;
    const Holding holding = local_holding(shape, layout, mesh, rank);
    const Box& box = holding.box;
    // The index in the layout's space: a fused dimension's index i is (i / chunk, i % chunk).
    std::vector<Index> at = index;
    if (layout.fused) {
      const std::size_t f = layout.fused->dim;
      const Index chunk = holding.space[f + 1];
      at[f] = index[f] / chunk;
      at.insert(at.begin() + static_cast<std::ptrdiff_t>(f) + 1, index[f] % chunk);
    }
    bool inside = true;
    Index position = 0;  // in the box's row-major order
    for (std::size_t d = 0; d < holding.space.size() && inside; ++d) {
      inside = at[d] >= box.start[d] && at[d] < box.start[d] + box.extent[d];
      position = position * box.extent[d] + (at[d] - box.start[d]);
    }
    inside = inside && box.element_count() > 0 && position >= holding.first && position < holding.first + holding.count;
    if (inside) result.push_back(rank);
  }
  return result;
}

bool is_writer(const TensorLayout& layout, const ProcessMesh& mesh, int rank, std::uint64_t stream) {
  std::vector<bool> used(mesh.shape().size(), false);
  for (const auto& axes : layout.dim_axes) {
    for (const int axis : axes) used[axis] = true;
  }
  for (const int axis : layout.partition_axes) used[axis] = true;  // a partition's parts are not replicas
  if (!holds(layout, mesh, rank)) return false;
  const std::vector<int> coordinates = mesh.coordinates(rank);
  std::uint64_t replicas = 1, replica = 0;
  for (std::size_t a = 0; a < used.size(); ++a) {
    if (used[a]) continue;
    std::uint64_t size = static_cast<std::uint64_t>(mesh.shape()[a]), at = static_cast<std::uint64_t>(coordinates[a]);
    for (const HeldAlong& h : layout.held_along) {
      if (h.axis != static_cast<int>(a) || size == 1) continue;  // only the coordinates that hold it
      size = h.coordinates.size();
      at = static_cast<std::uint64_t>(std::lower_bound(h.coordinates.begin(), h.coordinates.end(), coordinates[a]) - h.coordinates.begin());
    }
    replicas *= size;
    replica = replica * size + at;
  }
  return replica == stream % replicas;
}

}  // namespace shardinit
