#pragma once
// MPI-IO file views that select one box of one tensor in a safetensors file.

#include <mpi.h>

#include "shardinit/tensor/shape.hpp"

namespace shardinit::mpi::detail {

// An MPI datatype for one element of `element_size` bytes (owned).
class ElementType {
 public:
  explicit ElementType(std::size_t element_size);
  ~ElementType();
  ElementType(const ElementType&) = delete;
  ElementType& operator=(const ElementType&) = delete;
  [[nodiscard]] MPI_Datatype get() const noexcept { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

// A file type selecting `piece` of a row-major tensor of `shape` (owned): a subarray type, or,
// where a dimension does not fit MPI's int, an hindexed list of the piece's runs. `piece` must not
// be empty and must hold fewer than 2^31 elements.
class BoxFileType {
 public:
  BoxFileType(const Shape& shape, const Box& piece, MPI_Datatype element, std::size_t element_size);
  ~BoxFileType();
  BoxFileType(const BoxFileType&) = delete;
  BoxFileType& operator=(const BoxFileType&) = delete;
  [[nodiscard]] MPI_Datatype get() const noexcept { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

}  // namespace shardinit::mpi::detail
