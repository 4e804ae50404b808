#pragma once
// The runs of a box: elements [first, first + count) of a box of a global tensor, in the box's own
// row-major order, as the contiguous flat ranges of the tensor they are. Trailing dimensions the box
// covers whole are merged into one run, so a whole tensor is one run and a row-split shard one run.
// Every walk over the elements of a box (filling, comparing, locating an element) goes through here.

#include <cstdint>
#include <vector>

#include "shardinit/tensor/shape.hpp"

namespace shardinit {

// A flat range [flat, flat + length) of the global tensor.
struct FlatRun {
  Index flat = 0;
  Index length = 0;
};

class BoxRuns {
 public:
  // @pre box lies inside shape (check_box_inside) and 0 <= first <= first + count <= box.element_count().
  BoxRuns(const Shape& shape, const Box& box, Index first, Index count);

  // The next run, or false when the range is exhausted.
  bool next(FlatRun& run);

 private:
  std::vector<Index> strides_;   // row-major strides of the tensor
  std::vector<Index> position_;  // multi-index (global) of the next element, in the outer dimensions
  Box box_;
  std::size_t inner_dim_ = 0;    // first dimension of the contiguous block
  Index block_ = 1;              // elements of one contiguous block (extent[inner_dim_] * whole trailing dims)
  Index offset_in_block_ = 0;
  Index remaining_ = 0;
};

// The global flat index of element `i` (row-major order of the box) of `box`.
// @pre box lies inside shape and 0 <= i < box.element_count().
[[nodiscard]] Index box_element_flat(const Shape& shape, const Box& box, Index i);

}  // namespace shardinit
