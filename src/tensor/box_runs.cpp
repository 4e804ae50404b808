#include "shardinit/tensor/box_runs.hpp"

#include <algorithm>

namespace shardinit {

BoxRuns::BoxRuns(const Shape& shape, const Box& box, Index first, Index count)
    : strides_(row_major_strides(shape)), box_(box), remaining_(count) {
  const std::size_t rank = shape.size();
  if (count <= 0) return;  // nothing to walk (and an empty box may have zero extents to divide by)
  if (rank == 0) {  // a scalar: one element, flat index 0
    block_ = 1;
    offset_in_block_ = first;
    return;
  }
  // Merge the trailing dimensions the box covers whole: their elements are contiguous in the tensor.
  std::size_t d = rank - 1;
  while (d > 0 && box.start[d] == 0 && box.extent[d] == shape[d]) --d;
  inner_dim_ = d;
  block_ = 1;
  for (std::size_t k = d; k < rank; ++k) block_ *= box.extent[k];
  if (block_ == 0) {
    remaining_ = 0;
    return;
  }
  // The block holding element `first`, and the offset in it.
  Index outer = first / block_;
  offset_in_block_ = first % block_;
  position_.assign(d, 0);
  for (std::size_t k = d; k-- > 0;) {
    position_[k] = box.start[k] + outer % box.extent[k];
    outer /= box.extent[k];
  }
}

bool BoxRuns::next(FlatRun& run) {
  if (remaining_ <= 0) return false;
  Index flat = 0;
  if (!strides_.empty()) {
    for (std::size_t k = 0; k < inner_dim_; ++k) flat += position_[k] * strides_[k];
    flat += box_.start[inner_dim_] * strides_[inner_dim_];
  }
  const Index take = std::min(remaining_, block_ - offset_in_block_);
  run = FlatRun{flat + offset_in_block_, take};
  remaining_ -= take;
  offset_in_block_ = 0;
  for (std::size_t k = inner_dim_; k-- > 0;) {  // odometer over the outer dimensions
    if (++position_[k] < box_.start[k] + box_.extent[k]) break;
    position_[k] = box_.start[k];
  }
  return true;
}

Index box_element_flat(const Shape& shape, const Box& box, Index i) {
  BoxRuns runs(shape, box, i, 1);
  FlatRun run;
  runs.next(run);
  return run.flat;
}

}  // namespace shardinit
