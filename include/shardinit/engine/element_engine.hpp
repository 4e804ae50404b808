#pragma once
// A per-element random bit engine that models the standard UniformRandomBitGenerator concept (and
// Boost.Random's), so any std:: or Boost.Random distribution can drive a custom initializer. The
// engine for element i of a tensor depends only on (seed, stream, i): run the same distribution code
// on a fresh engine per element and the result is shard-invariant by construction.
//
// Derivation (docs/stream-format.md, section 6): the tensor's custom key is words 0 and 1 of block
// 2^63 of its stream (a block the built-in distributions never use); element i's n-th group of four
// words is Philox4x32-10 with that key at counter (i lo, i hi, n lo, n hi). Words are served in order.

#include <cstdint>
#include <limits>

#include "shardinit/engine/stream.hpp"

namespace shardinit {

class ElementEngine {
 public:
  using result_type = std::uint32_t;

  ElementEngine(Philox4x32::key_type custom_key, std::uint64_t element_index) noexcept
      : key_(custom_key), index_(element_index) {}

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  result_type operator()() noexcept {
    if (lane_ == 4) {
      words_ = Philox4x32{}({static_cast<std::uint32_t>(index_), static_cast<std::uint32_t>(index_ >> 32),
                             static_cast<std::uint32_t>(group_), static_cast<std::uint32_t>(group_ >> 32)},
                            key_);
      ++group_;
      lane_ = 0;
    }
    return words_[lane_++];
  }

  // Skips `n` words, as if operator() had been called n times.
  void discard(std::uint64_t n) noexcept {
    const std::uint64_t position = consumed() + n;
    group_ = position / 4;
    lane_ = 4;
    for (std::uint64_t r = position % 4; r > 0; --r) (*this)();
  }

  [[nodiscard]] std::uint64_t element_index() const noexcept { return index_; }

 private:
  [[nodiscard]] std::uint64_t consumed() const noexcept { return lane_ == 4 ? group_ * 4 : (group_ - 1) * 4 + lane_; }

  Philox4x32::key_type key_;
  std::uint64_t index_;
  std::uint64_t group_ = 0;
  unsigned lane_ = 4;
  Philox4x32::ctr_type words_{};
};

// The key from which every element engine of one tensor is made.
[[nodiscard]] constexpr Philox4x32::key_type custom_key(std::uint64_t seed, std::uint64_t stream) noexcept {
  const auto words = block_words(key_from_seed(seed), stream, std::uint64_t{1} << 63);
  return {words[0], words[1]};
}

}  // namespace shardinit
