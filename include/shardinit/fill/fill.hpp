#pragma once
// The core primitive: fill any region of a logically global tensor into a caller's buffer. Every
// element's value is a pure function of (seed, stream, distribution, dtype, global flat index), so a
// region filled here equals the same region of a whole-tensor fill, bit for bit, whoever fills it.
// Pure computation: no MPI, no I/O, no global state; safe to call from any number of threads.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "shardinit/distributions/distribution.hpp"
#include "shardinit/dtype.hpp"
#include "shardinit/engine/element_engine.hpp"
#include "shardinit/error.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit {

struct TensorSpec {
  std::string name;          // for messages; the values depend on `stream`, not on the name
  Shape shape;               // the global shape
  DType dtype = DType::f32;
  std::uint64_t stream = 0;  // usually stream_from_name(name)
  Distribution distribution;
};

// How a fill runs. Never changes a value: every element is computed from its own index, so any
// split of the work gives the same bits.
struct FillOptions {
  // Threads per fill call (>= 1). A call splits its range into this many contiguous parts, one per
  // thread, when the range is large enough to be worth it.
  int threads = 1;
};

// Fills regions of one tensor. Construction validates the distribution for the dtype (throwing
// Error(invalid_argument) that names the tensor) and computes the per-tensor constants once; the fill
// calls are const and may run concurrently.
class TensorFiller {
 public:
  TensorFiller(std::uint64_t seed, TensorSpec spec, FillOptions options = {});
  ~TensorFiller();
  TensorFiller(TensorFiller&&) noexcept;
  TensorFiller& operator=(TensorFiller&&) noexcept;

  // Elements [first, first + count) of the flattened (row-major) global tensor, stored densely in
  // `out` (count * dtype_size bytes, little-endian; bf16 and f16 as their 16-bit patterns).
  // Throws Error(invalid_argument) if the range is not inside the tensor or `out` has the wrong size.
  void fill_flat(Index first, Index count, std::span<std::byte> out) const;

  // The box `box` of the global tensor, stored densely in row-major order of the box.
  void fill_box(const Box& box, std::span<std::byte> out) const;

  // Elements [first, first + count) of the box, counted in the box's own row-major order: lets a box
  // be produced in pieces of bounded size.
  void fill_box_range(const Box& box, Index first, Index count, std::span<std::byte> out) const;

  [[nodiscard]] const TensorSpec& spec() const noexcept { return spec_; }

 private:
  // Throws Error(invalid_argument) unless `out` holds exactly `count` elements (overflow-checked).
  void check_output_size(std::span<const std::byte> out, Index count, const std::string& what) const;
  void fill_flat_serial(Index first, Index count, std::byte* out) const;
  void fill_box_range_serial(const Box& box, Index first, Index count, std::byte* out) const;

  struct Prepared;
  std::uint64_t seed_;
  TensorSpec spec_;
  FillOptions options_;
  std::unique_ptr<const Prepared> prepared_;
};

// One-shot forms of the above.
void fill_flat(std::uint64_t seed, const TensorSpec& spec, Index first, Index count,
               std::span<std::byte> out);
void fill_box(std::uint64_t seed, const TensorSpec& spec, const Box& box, std::span<std::byte> out);

// Custom initializers: `element(engine)` returns one value from a per-element engine (any std:: or
// Boost.Random distribution can draw from it; construct the distribution inside `element`, since
// some keep state between calls). The value of element i depends only on (seed, stream, i), so the
// result is shard-invariant like the built-in distributions.
template <class T, class ElementFunction>
void fill_box_custom(std::uint64_t seed, std::uint64_t stream, const Shape& shape, const Box& box,
                     std::span<T> out, ElementFunction&& element) {
  check_box_inside(shape, box);
  const Index count = box.element_count();
  if (static_cast<Index>(out.size()) != count) {
    throw Error(ErrorKind::invalid_argument, "fill_box_custom: output holds " + std::to_string(out.size()) +
                                                 " elements, the box " + box.to_string() + " has " +
                                                 std::to_string(count));
  }
  if (count == 0) return;
  const auto key = custom_key(seed, stream);
  const auto strides = row_major_strides(shape);
  const std::size_t rank = shape.size();
  std::vector<Index> position(box.start);  // current multi-index, last dimension fastest
  const Index row = rank == 0 ? 1 : box.extent[rank - 1];
  std::size_t written = 0;
  while (written < out.size()) {
    Index flat = 0;
    for (std::size_t d = 0; d < rank; ++d) flat += position[d] * strides[d];
    for (Index j = 0; j < row; ++j) {
      ElementEngine engine(key, static_cast<std::uint64_t>(flat + j));
      out[written++] = static_cast<T>(element(engine));
    }
    for (std::size_t d = rank >= 1 ? rank - 1 : 0; d-- > 0;) {  // odometer over the outer dimensions
      if (++position[d] < box.start[d] + box.extent[d]) break;
      position[d] = box.start[d];
    }
  }
}

}  // namespace shardinit
