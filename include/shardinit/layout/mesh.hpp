#pragma once
// Who owns what: a process mesh and, per tensor, which mesh axes split which tensor dimension.
// Pure functions, no MPI (docs/layouts.md).
//
// The mesh is N-dimensional; ranks are numbered row-major over mesh coordinates, like a DeviceMesh
// of arange(world).reshape(mesh). A tensor dimension may be split over an ordered list of mesh axes,
// major first (Colossal-AI's dim_partition_dict {tensor_dim: [mesh_axis, ...]}); mesh axes that split
// nothing replicate the tensor. Uneven dimensions follow torch.chunk: chunks of ceil(n/p) elements,
// the last ones smaller or empty.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardinit/tensor/shape.hpp"

namespace shardinit {

class ProcessMesh {
 public:
  // Throws Error(invalid_argument) for an empty mesh or a dimension < 1.
  explicit ProcessMesh(std::vector<int> shape);

  [[nodiscard]] const std::vector<int>& shape() const noexcept { return shape_; }
  [[nodiscard]] int size() const noexcept { return size_; }  // number of ranks
  // Precondition: 0 <= rank < size().
  [[nodiscard]] std::vector<int> coordinates(int rank) const;
  // Precondition: coordinates inside the mesh.
  [[nodiscard]] int rank_of(const std::vector<int>& coordinates) const;
  [[nodiscard]] std::string to_string() const;  // "[2, 4]"

 private:
  std::vector<int> shape_;
  int size_ = 1;
};

// How the data-parallel ranks share a tensor's box among themselves (docs/layouts.md).
enum class DataPartition {
  none,   // replicas: each of them holds the whole box
  zero3,  // DeepSpeed ZeRO-3: each holds a contiguous range of the box's row-major order (zero3_partition)
  fsdp2,  // FSDP2 fully_shard's Shard(0): each holds torch.chunk of the box's dimension 0
};
[[nodiscard]] std::string_view data_partition_name(DataPartition partition) noexcept;  // "none", "zero3", "fsdp2"
// Throws Error(invalid_argument) naming the valid ones.
[[nodiscard]] DataPartition parse_data_partition(std::string_view text);

// Where a tensor is held along one mesh axis: only the ranks whose coordinate on `axis` is one of
// `coordinates` (ascending, distinct) hold any of it; the others hold nothing. On a mesh where that
// axis has size 1 (one process filling the whole job) every rank holds it.
struct HeldAlong {
  enum class Kind {
    stages,  // the pipeline stages that hold the tensor (a tied embedding: the first and the last)
    expert,  // one whole expert: the expert-parallel rank that holds it (one coordinate)
  };
  Kind kind = Kind::stages;
  int axis = -1;
  std::vector<int> coordinates;
  friend bool operator==(const HeldAlong&, const HeldAlong&) = default;
};

// A dimension made of `parts` equal blocks side by side (GPT-2's c_attn: q, k and v in one (n, 3n)
// weight): the layout's split of that dimension applies to each block, and a rank holds its chunk of
// every block, concatenated in block order (Colossal-AI's GPT2FusedLinearConv1D_Col). The layout sees
// the tensor as its space: the dimension becomes (parts, n / parts), the parts split over nothing.
struct FusedParts {
  std::size_t dim = 0;
  Index parts = 1;
  friend bool operator==(const FusedParts&, const FusedParts&) = default;
};

struct TensorLayout {
  TensorLayout(std::vector<std::vector<int>> dims = {}, std::vector<HeldAlong> held = {})
      : dim_axes(std::move(dims)), held_along(std::move(held)) {}
  // For each tensor dimension, the mesh axes it is split over, major first; empty: not split.
  std::vector<std::vector<int>> dim_axes;
  // The axes along which only some coordinates hold the tensor (pipeline stages, a whole expert's
  // expert-parallel rank), at most one entry per axis; none: every rank holds its box.
  std::vector<HeldAlong> held_along;
  // Data partition: the box above is shared among the ranks that differ only along `partition_axes`
  // (major first; a rank's place in that group is row-major over them), as DeepSpeed or FSDP2 do over
  // the data-parallel group. `none` with no axes: those ranks are replicas.
  DataPartition partition = DataPartition::none;
  std::vector<int> partition_axes;
  std::optional<FusedParts> fused;  // a dimension of equal blocks, each split as the dimension says

  [[nodiscard]] static TensorLayout replicated(std::size_t tensor_rank) { return TensorLayout(std::vector<std::vector<int>>(tensor_rank)); }
  // "{0: [0, 2], 1: [1]}" ("replicated" when nothing is split), then " fused 3 along 1", then
  // " on stages [0, 1] of axis 1" (or " on expert rank 1 of axis 2"), then " zero3 over axes [0]".
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const TensorLayout&, const TensorLayout&) = default;
};

// Throws Error(invalid_argument) unless the layout has one entry per tensor dimension, names only
// mesh axes that exist, and uses each mesh axis at most once; a held-along axis must exist, split no
// dimension, be named once, and its coordinates be distinct and ascending coordinates of it;
// partition axes must exist, be distinct, split no dimension and not be held-along axes, and be
// present exactly when there is a partition; a fused dimension must exist, have at least one part,
// and not be dimension 0 under fsdp2 (which chunks dimension 0 of the rank's tensor).
void check_layout(const TensorLayout& layout, std::size_t tensor_rank, const ProcessMesh& mesh);

// Whether `rank` holds any of the tensor: on every held-along axis its coordinate is one of the
// layout's (always, without held-along axes).
// Precondition: check_layout passed, 0 <= rank < mesh.size().
[[nodiscard]] bool holds(const TensorLayout& layout, const ProcessMesh& mesh, int rank);

// torch.chunk(n elements, parts)[index]: chunks of ceil(n / parts), clipped to n (so possibly empty).
struct Chunk {
  Index start = 0;
  Index extent = 0;
};
[[nodiscard]] Chunk torch_chunk(Index n, Index parts, Index index);

// Into how many parts `layout` splits dimension `dim`, and which part the rank at `coordinates` has.
[[nodiscard]] Index parts_of_dim(const TensorLayout& layout, std::size_t dim, const ProcessMesh& mesh);
[[nodiscard]] Index part_of_dim(const TensorLayout& layout, std::size_t dim, const ProcessMesh& mesh,
                                const std::vector<int>& coordinates);

// DeepSpeed ZeRO-3's partition of a flattened parameter of `numel` elements over `parts` ranks
// (deepspeed/runtime/zero/partition_parameters.py, Init._partition_param): the parameter is padded to
// a multiple of `parts` (_padding_size, _aligned_size), each rank's partition has
// size = aligned / parts = ceil(numel / parts) elements (ds_tensor.ds_numel) and starts at
// size * index (index = the rank in the partition group, get_partition_rank); it holds the
// count = min(size, numel - start) real elements there (none when start >= numel), the rest of its
// partition is padding. Preconditions: numel >= 0, parts >= 1, 0 <= index < parts.
struct FlatPartition {
  Index size = 0;   // elements of every rank's partition, padding included
  Index first = 0;  // the first element held (clipped to numel)
  Index count = 0;  // real elements held
};
[[nodiscard]] FlatPartition zero3_partition(Index numel, Index parts, Index index);

// The shape the layout splits: `shape` itself, or with the fused dimension n made (parts, n / parts).
// A row-major view of the same elements: an element's flat index is the same in both. Throws
// Error(invalid_argument) when the parts do not divide the fused dimension.
[[nodiscard]] Shape layout_space(const Shape& shape, const TensorLayout& layout);

// A box's extents in the layout's space as the rank stores them: a fused dimension's (parts, chunk)
// merged back into one (parts * chunk); unchanged without a fused dimension.
[[nodiscard]] Shape merge_fused(Shape extent, const TensorLayout& layout);

// The box of the tensor's space (layout_space: the global tensor itself unless a dimension is fused)
// that `rank`'s holding lies in (possibly empty; for a rank that does not hold the tensor at all,
// every extent is 0): under zero3 the rank holds only a range of it (local_holding).
// Preconditions: check_layout passed, 0 <= rank < mesh.size().
[[nodiscard]] Box local_box(const Shape& shape, const TensorLayout& layout, const ProcessMesh& mesh, int rank);

// What one rank holds of a tensor: `count` elements from `first` in the row-major order of `box`
// (the whole box, unless a zero3 partition cuts a range of it). `buffer` is the size of the rank's
// buffer in elements: zero3's partition size (the held elements, then padding), else `count`.
struct Holding {
  Shape space;  // the shape `box` is a box of: the tensor's, or its layout_space when a dimension is fused
  Box box;
  Index first = 0;
  Index count = 0;
  Index buffer = 0;
  bool flat = false;  // a zero3 range: store it as a 1-d tensor of `count` elements, not as the box
  // The held elements as boxes of `space`, in order (box_range_boxes).
  [[nodiscard]] std::vector<Box> boxes() const;
  // The rank's tensor: (count) for a flat range, else the box's extents with a fused dimension's
  // (parts, chunk) merged back into one (parts * chunk), as the rank stores it.
  [[nodiscard]] Shape local_shape(const TensorLayout& layout) const;
};
// Preconditions: as local_box.
[[nodiscard]] Holding local_holding(const Shape& shape, const TensorLayout& layout, const ProcessMesh& mesh, int rank);

// Which part of `partition_axes`' group the rank at `coordinates` is, and how many parts there are.
[[nodiscard]] Index partition_parts(const TensorLayout& layout, const ProcessMesh& mesh);
[[nodiscard]] Index partition_index(const TensorLayout& layout, const ProcessMesh& mesh, const std::vector<int>& coordinates);

// Every rank that holds the element at `index` (several when the layout replicates), ascending.
[[nodiscard]] std::vector<int> owners(const Shape& shape, const TensorLayout& layout, const ProcessMesh& mesh,
                                      const std::vector<Index>& index);

// Replicas hold equal boxes; exactly one of them writes the box to a shared file. To spread the
// writing of replicated tensors over the ranks, the writer is replica number `stream mod replicas`
// (replicas numbered row-major over the mesh axes the layout does not use; on a held-along axis, only
// the coordinates that hold the tensor count, numbered in ascending order). A rank that does not hold the
// tensor never writes it.
[[nodiscard]] bool is_writer(const TensorLayout& layout, const ProcessMesh& mesh, int rank, std::uint64_t stream);

}  // namespace shardinit
