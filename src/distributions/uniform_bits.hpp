#pragma once
// How Philox words become uniform numbers (docs/stream-format.md, section 4). Every conversion is
// exact or a single round-to-nearest-even, so it has one right answer on every machine.

#include <cstdint>

namespace shardinit::detail {

// [0, 1) with 24 random bits: (k >> 8) * 2^-24, exact.
inline double unit_uniform(std::uint32_t k) noexcept { return static_cast<double>(k >> 8) * 0x1p-24; }
// [0, 1) with 53 random bits: (K >> 11) * 2^-53, exact.
inline double unit_uniform(std::uint64_t K) noexcept { return static_cast<double>(K >> 11) * 0x1p-53; }

// (0, 1]: (k + 1/2) * 2^-32 rounded once to binary32. Never 0, so logarithms and quantiles stay
// finite; the complement of k gives 1 - u with the same accuracy, which keeps upper tails accurate.
inline float open_uniform32(std::uint32_t k) noexcept {
  return static_cast<float>((static_cast<double>(k) + 0.5) * 0x1p-32);  // exact in binary64, then one rounding
}
// (0, 1]: (K + 1/2) * 2^-64 rounded once to binary64 (sum of two exact parts, rounded once).
inline double open_uniform64(std::uint64_t K) noexcept {
  return static_cast<double>(K >> 32) * 0x1p-32 +
         (static_cast<double>(static_cast<std::uint32_t>(K)) + 0.5) * 0x1p-64;
}
// The 32-bit version in binary64 (exact), used by the far-tail truncated normal of the 32-bit types.
inline double open_uniform32_as_double(std::uint32_t k) noexcept {
  return (static_cast<double>(k) + 0.5) * 0x1p-32;
}

}  // namespace shardinit::detail
