#pragma once
// Who owns what: a process mesh and, per tensor, which mesh axes split which tensor dimension.
// Pure functions, no MPI (docs/layouts.md).
//
// The mesh is N-dimensional; ranks are numbered row-major over mesh coordinates, like a DeviceMesh
// of arange(world).reshape(mesh). A tensor dimension may be split over an ordered list of mesh axes,
// major first (Colossal-AI's dim_partition_dict {tensor_dim: [mesh_axis, ...]}); mesh axes that split
// nothing replicate the tensor. Uneven dimensions follow torch.chunk: chunks of ceil(n/p) elements,
// the last ones smaller or empty.

#include <string>
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

struct TensorLayout {
  TensorLayout(std::vector<std::vector<int>> dims = {}, int stage_axis_ = -1, std::vector<int> stages_ = {})
      : dim_axes(std::move(dims)), stage_axis(stage_axis_), stages(std::move(stages_)) {}
  // For each tensor dimension, the mesh axes it is split over, major first; empty: not split.
  std::vector<std::vector<int>> dim_axes;
  // Pipeline stages: the mesh axis whose coordinate is a rank's stage, and the stages that hold the
  // tensor (ascending). A rank of another stage holds nothing of it. stage_axis -1: every rank holds
  // its box (no pipeline, or a tensor every stage has). On a mesh whose stage axis has size 1 (one
  // process filling the whole job) every rank holds every tensor.
  int stage_axis = -1;
  std::vector<int> stages;

  [[nodiscard]] static TensorLayout replicated(std::size_t tensor_rank) { return TensorLayout(std::vector<std::vector<int>>(tensor_rank)); }
  // "{0: [0, 2], 1: [1]}" ("replicated" when nothing is split), then " on stages [0, 1] of axis 1".
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const TensorLayout&, const TensorLayout&) = default;
};

// Throws Error(invalid_argument) unless the layout has one entry per tensor dimension, names only
// mesh axes that exist, and uses each mesh axis at most once; a stage axis must exist, split no
// dimension, and its stages be distinct coordinates of it.
void check_layout(const TensorLayout& layout, std::size_t tensor_rank, const ProcessMesh& mesh);

// Whether `rank` holds any of the tensor: its stage is one of the layout's (always, without stages).
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

// The box of the global tensor that `rank` holds (possibly empty; for a rank that does not hold the
// tensor at all, every extent is 0). Preconditions: check_layout passed, 0 <= rank < mesh.size().
[[nodiscard]] Box local_box(const Shape& shape, const TensorLayout& layout, const ProcessMesh& mesh, int rank);

// Every rank that holds the element at `index` (several when the layout replicates), ascending.
[[nodiscard]] std::vector<int> owners(const Shape& shape, const TensorLayout& layout, const ProcessMesh& mesh,
                                      const std::vector<Index>& index);

// Replicas hold equal boxes; exactly one of them writes the box to a shared file. To spread the
// writing of replicated tensors over the ranks, the writer is replica number `stream mod replicas`
// (replicas numbered row-major over the mesh axes the layout does not use; on the stage axis, only
// the stages that hold the tensor count, numbered in ascending order). A rank that does not hold the
// tensor never writes it.
[[nodiscard]] bool is_writer(const TensorLayout& layout, const ProcessMesh& mesh, int rank, std::uint64_t stream);

}  // namespace shardinit
