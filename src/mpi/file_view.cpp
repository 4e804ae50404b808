#include "mpi/file_view.hpp"

#include <limits>
#include <vector>

#include "mpi/agreement.hpp"

namespace shardinit::mpi::detail {

ElementType::ElementType(std::size_t element_size) {
  check(MPI_Type_contiguous(static_cast<int>(element_size), MPI_BYTE, &type_), "MPI_Type_contiguous");
  check(MPI_Type_commit(&type_), "MPI_Type_commit");
}

ElementType::~ElementType() {
  if (type_ != MPI_DATATYPE_NULL) MPI_Type_free(&type_);
}

BoxFileType::BoxFileType(const Shape& shape, const Box& piece, MPI_Datatype element, std::size_t element_size) {
  // A scalar is a tensor of one element.
  const Shape dims = shape.empty() ? Shape{1} : shape;
  const Box box = shape.empty() ? Box{{0}, {1}} : piece;
  bool fits_int = true;
  for (const Index d : dims) fits_int = fits_int && d <= std::numeric_limits<int>::max();
  if (fits_int) {
    const std::vector<int> sizes(dims.begin(), dims.end());
    const std::vector<int> subsizes(box.extent.begin(), box.extent.end());
    const std::vector<int> starts(box.start.begin(), box.start.end());
    check(MPI_Type_create_subarray(static_cast<int>(sizes.size()), sizes.data(), subsizes.data(), starts.data(),
                                   MPI_ORDER_C, element, &type_),
          "MPI_Type_create_subarray");
  } else {
    // Runs along the last dimension, at byte displacements from the tensor's first element.
    const auto strides = row_major_strides(dims);
    const std::size_t rank = dims.size();
    const Index run = box.extent[rank - 1];
    std::vector<int> lengths;
    std::vector<MPI_Aint> displacements;
    std::vector<Index> position(box.start);
    for (Index done = 0; done < box.element_count(); done += run) {
      Index flat = 0;
      for (std::size_t d = 0; d < rank; ++d) flat += position[d] * strides[d];
      lengths.push_back(static_cast<int>(run));
      displacements.push_back(static_cast<MPI_Aint>(flat) * static_cast<MPI_Aint>(element_size));
      for (std::size_t d = rank - 1; d-- > 0;) {
        if (++position[d] < box.start[d] + box.extent[d]) break;
        position[d] = box.start[d];
      }
    }
    check(MPI_Type_create_hindexed(static_cast<int>(lengths.size()), lengths.data(), displacements.data(), element,
                                   &type_),
          "MPI_Type_create_hindexed");
  }
  check(MPI_Type_commit(&type_), "MPI_Type_commit");
}

BoxFileType::~BoxFileType() {
  if (type_ != MPI_DATATYPE_NULL) MPI_Type_free(&type_);
}

}  // namespace shardinit::mpi::detail
