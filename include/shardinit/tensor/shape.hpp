#pragma once
// Shapes, flat row-major indices and boxes (axis-aligned hyperrectangles) of a global tensor. All
// counts are 64-bit: tensors of more than 2^32 elements are ordinary.

#include <cstdint>
#include <string>
#include <vector>

namespace shardinit {

using Index = std::int64_t;
using Shape = std::vector<Index>;

// Number of elements; throws Error(invalid_argument) for a negative dimension or a product that
// does not fit in a signed 64-bit integer. An empty shape is a scalar (one element).
[[nodiscard]] Index element_count(const Shape& shape);

// "[3072, 768]"
[[nodiscard]] std::string shape_to_string(const Shape& shape);

// Row-major strides in elements (stride of the last dimension is 1).
[[nodiscard]] std::vector<Index> row_major_strides(const Shape& shape);

// The multi-index of flat index `flat` in `shape` (precondition: 0 <= flat < element_count(shape)).
[[nodiscard]] std::vector<Index> unflatten(const Shape& shape, Index flat);

// A box of a tensor: start[d] <= i[d] < start[d] + extent[d] for every dimension d.
struct Box {
  std::vector<Index> start;
  std::vector<Index> extent;

  // The box covering the whole of `shape`.
  [[nodiscard]] static Box whole(const Shape& shape);
  [[nodiscard]] Index element_count() const;
  [[nodiscard]] std::string to_string() const;
};

// Throws Error(invalid_argument) unless `box` has the rank of `shape` and lies inside it.
void check_box_inside(const Shape& shape, const Box& box);

// Splits `box` into boxes of at most `max_elements` elements (max_elements >= 1), in the box's
// row-major order, keeping trailing dimensions whole as far as possible. An empty box has no pieces;
// a box of rank 0 is one piece.
[[nodiscard]] std::vector<Box> split_box(const Box& box, Index max_elements);

// Elements [first, first + count) of `box` in its row-major order, as at most 2 * rank - 1 boxes
// (a partial row, whole rows, a partial row at each level), in order. Precondition: the range lies
// inside the box.
[[nodiscard]] std::vector<Box> box_range_boxes(const Box& box, Index first, Index count);

}  // namespace shardinit
