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
  // For each tensor dimension, the mesh axes it is split over, major first; empty: not split.
  std::vector<std::vector<int>> dim_axes;

  [[nodiscard]] static TensorLayout replicated(std::size_t tensor_rank) { return {std::vector<std::vector<int>>(tensor_rank)}; }
  [[nodiscard]] std::string to_string() const;  // "{0: [0, 2], 1: [1]}" ("replicated" when nothing is split)
  friend bool operator==(const TensorLayout&, const TensorLayout&) = default;
};

// Throws Error(invalid_argument) unless the layout has one entry per tensor dimension, names only
// mesh axes that exist, and uses each mesh axis at most once.
void check_layout(const TensorLayout& layout, std::size_t tensor_rank, const ProcessMesh& mesh);

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

// The box of the global tensor that `rank` holds (possibly empty). Preconditions: check_layout passed,
// 0 <= rank < mesh.size().
[[nodiscard]] Box local_box(const Shape& shape, const TensorLayout& layout, const ProcessMesh& mesh, int rank);

// Every rank that holds the element at `index` (several when the layout replicates), ascending.
[[nodiscard]] std::vector<int> owners(const Shape& shape, const TensorLayout& layout, const ProcessMesh& mesh,
                                      const std::vector<Index>& index);

// Replicas hold equal boxes; exactly one of them writes the box to a shared file. To spread the
// writing of replicated tensors over the ranks, the writer is replica number `stream mod replicas`
// (replicas numbered row-major over the mesh axes the layout does not use).
[[nodiscard]] bool is_writer(const TensorLayout& layout, const ProcessMesh& mesh, int rank, std::uint64_t stream);

}  // namespace shardinit
