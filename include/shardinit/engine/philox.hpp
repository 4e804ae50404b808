#pragma once
// Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3", SC'11),
// written as Random123 writes it: a stateless functor from (counter, key) to four 32-bit words.
// Integer arithmetic only, so every compiler and instruction set produces the same words.

#include <array>
#include <cstdint>

namespace shardinit {

struct Philox4x32 {
  using ctr_type = std::array<std::uint32_t, 4>;
  using key_type = std::array<std::uint32_t, 2>;

  static constexpr int kRounds = 10;
  // Round multipliers and Weyl key increments of Philox4x32 (Random123 PHILOX_M4x32_*, PHILOX_W32_*).
  static constexpr std::uint32_t kMultiplier0 = 0xD2511F53u;
  static constexpr std::uint32_t kMultiplier1 = 0xCD9E8D57u;
  static constexpr std::uint32_t kKeyIncrement0 = 0x9E3779B9u;  // golden ratio
  static constexpr std::uint32_t kKeyIncrement1 = 0xBB67AE85u;  // sqrt(3) - 1

  [[nodiscard]] constexpr ctr_type operator()(ctr_type ctr, key_type key) const noexcept {
    return rounds<kRounds>(ctr, key);
  }

  // Any round count, for the 7-round known-answer vectors; shardinit itself always uses 10.
  template <int R>
  [[nodiscard]] static constexpr ctr_type rounds(ctr_type ctr, key_type key) noexcept {
    for (int r = 0; r < R; ++r) {
      if (r > 0) {
        key[0] += kKeyIncrement0;
        key[1] += kKeyIncrement1;
      }
      ctr = round(ctr, key);
    }
    return ctr;
  }

 private:
  [[nodiscard]] static constexpr ctr_type round(const ctr_type& c, const key_type& k) noexcept {
    const std::uint64_t p0 = std::uint64_t{kMultiplier0} * c[0];
    const std::uint64_t p1 = std::uint64_t{kMultiplier1} * c[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32);
    const auto lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32);
    const auto lo1 = static_cast<std::uint32_t>(p1);
    return {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
  }
};

}  // namespace shardinit
