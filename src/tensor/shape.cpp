#include "shardinit/tensor/shape.hpp"

#include <algorithm>
#include <limits>

#include "shardinit/error.hpp"

namespace shardinit {

Index element_count(const Shape& shape) {
  Index count = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) {
      throw Error(ErrorKind::invalid_argument, "dimension " + std::to_string(d) + " of shape " + shape_to_string(shape) +
                                                   " is negative (" + std::to_string(shape[d]) + ")");
    }
  }
  for (const Index extent : shape) {
    if (extent == 0) return 0;
  }
  for (const Index extent : shape) {
    if (count > std::numeric_limits<Index>::max() / extent) {
      throw Error(ErrorKind::invalid_argument,
                  "shape " + shape_to_string(shape) + " has more than 2^63 - 1 elements");
    }
    count *= extent;
  }
  return count;
}

std::string shape_to_string(const Shape& shape) {
  std::string text = "[";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d > 0) text += ", ";
    text += std::to_string(shape[d]);
  }
  return text + "]";
}

std::vector<Index> row_major_strides(const Shape& shape) {
  std::vector<Index> strides(shape.size(), 1);
  for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  return strides;
}

std::vector<Index> unflatten(const Shape& shape, Index flat) {
  std::vector<Index> index(shape.size(), 0);
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return index;
}

Box Box::whole(const Shape& shape) { return Box{std::vector<Index>(shape.size(), 0), shape}; }

Index Box::element_count() const { return shardinit::element_count(extent); }

std::string Box::to_string() const {
  std::string text = "{start ";
  text += shape_to_string(start);
  text += ", extent ";
  text += shape_to_string(extent);
  return text + "}";
}

void check_box_inside(const Shape& shape, const Box& box) {
  if (box.start.size() != shape.size() || box.extent.size() != shape.size()) {
    throw Error(ErrorKind::invalid_argument, "box " + box.to_string() + " does not have the rank of shape " +
                                                 shape_to_string(shape));
  }
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (box.start[d] < 0 || box.extent[d] < 0 || box.start[d] > shape[d] || box.extent[d] > shape[d] - box.start[d]) {
      throw Error(ErrorKind::invalid_argument, "box " + box.to_string() + " is not inside shape " +
                                                   shape_to_string(shape) + " (dimension " + std::to_string(d) + ")");
    }
  }
}

std::vector<Box> split_box(const Box& box, Index max_elements) {
  const std::size_t rank = box.extent.size();
  if (box.element_count() == 0) return {};
  if (rank == 0) return {box};
  // The outermost dimension d whose trailing dimensions fit in one piece; split along d.
  std::size_t d = rank - 1;
  Index inner = 1;
  while (d > 0 && inner * box.extent[d] <= max_elements) {
    inner *= box.extent[d];
    --d;
  }
  if (inner * box.extent[d] <= max_elements) {  // the whole box fits
    return {box};
  }
  const Index rows = std::max<Index>(1, max_elements / inner);
  std::vector<Box> pieces;
  std::vector<Index> outer(box.start.begin(), box.start.begin() + static_cast<std::ptrdiff_t>(d));
  while (true) {
    for (Index s = 0; s < box.extent[d]; s += rows) {
      Box piece = box;
      for (std::size_t k = 0; k < d; ++k) {
        piece.start[k] = outer[k];
        piece.extent[k] = 1;
      }
      piece.start[d] = box.start[d] + s;
      piece.extent[d] = std::min(rows, box.extent[d] - s);
      pieces.push_back(std::move(piece));
    }
    std::size_t k = d;  // odometer over the dimensions before d
    while (k > 0) {
      --k;
      if (++outer[k] < box.start[k] + box.extent[k]) break;
      outer[k] = box.start[k];
      if (k == 0) return pieces;
    }
    if (d == 0) return pieces;
  }
}

}  // namespace shardinit

namespace shardinit {

namespace {
// Appends the boxes of elements [first, end) of `box`, whose dimensions before `dim` have extent 1.
void append_range_boxes(const Box& box, std::size_t dim, Index first, Index end, std::vector<Box>& out) {
  if (first >= end) return;
  if (dim == box.extent.size()) {  // a single element (rank 0, or the last level)
    out.push_back(box);
    return;
  }
  Index inner = 1;  // elements per index of `dim`
  for (std::size_t d = dim + 1; d < box.extent.size(); ++d) inner *= box.extent[d];
  const auto row = [&](Index r) {
    Box one = box;
    one.start[dim] = box.start[dim] + r;
    one.extent[dim] = 1;
    return one;
  };
  Index first_row = first / inner;
  const Index end_row = end / inner;
  if (first_row == end_row) {  // inside one index of `dim`
    append_range_boxes(row(first_row), dim + 1, first - first_row * inner, end - first_row * inner, out);
    return;
  }
  if (first % inner != 0) {  // the partial index at the start
    append_range_boxes(row(first_row), dim + 1, first % inner, inner, out);
    ++first_row;
  }
  if (end_row > first_row) {  // whole indices
    Box whole = box;
    whole.start[dim] = box.start[dim] + first_row;
    whole.extent[dim] = end_row - first_row;
    out.push_back(std::move(whole));
  }
  if (end % inner != 0) append_range_boxes(row(end_row), dim + 1, 0, end % inner, out);
}
}  // namespace

std::vector<Box> box_range_boxes(const Box& box, Index first, Index count) {
  std::vector<Box> out;
  if (count > 0) append_range_boxes(box, 0, first, first + count, out);
  return out;
}

}  // namespace shardinit
