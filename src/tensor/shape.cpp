#include "shardinit/tensor/shape.hpp"

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

}  // namespace shardinit
