#pragma once
// Overflow-checked sizes. Every element count times element size, every offset and every file size
// goes through these: a tensor of [2^62] f32 elements is 2^64 bytes, which wraps to 0 in 64-bit
// arithmetic and would otherwise become a zero-byte tensor in a file, or a fill into a zero-byte
// buffer. Files are addressed with a signed 64-bit off_t (and MPI_Offset), so the limit is 2^63 - 1.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "shardinit/error.hpp"

namespace shardinit::detail {

inline constexpr std::int64_t kMaxFileBytes = std::numeric_limits<std::int64_t>::max();

// Unsigned 128-bit integers, for products of two 64-bit sizes that must not wrap before a division
// (GCC and Clang on 64-bit targets; __extension__ says so to -Wpedantic once, here).
__extension__ using uint128 = unsigned __int128;

// a * b and a + b of non-negative sizes, or nothing when the result does not fit in 2^63 - 1.
[[nodiscard]] constexpr std::optional<std::int64_t> checked_mul(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t product = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}
[[nodiscard]] constexpr std::optional<std::int64_t> checked_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t sum = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

// `count` elements of `element_size` bytes, in bytes. Throws Error(invalid_argument) "WHAT: COUNT
// elements of SIZE bytes are more than 2^63 - 1 bytes" when that does not fit.
[[nodiscard]] inline std::int64_t byte_size(std::int64_t count, std::size_t element_size, std::string_view what) {
  const auto bytes = checked_mul(count, static_cast<std::int64_t>(element_size));
  if (!bytes) {
    throw Error(ErrorKind::invalid_argument, std::string(what) + ": " + std::to_string(count) + " elements of " +
                                                 std::to_string(element_size) +
                                                 " bytes are more than 2^63 - 1 bytes, more than any file or memory holds");
  }
  return *bytes;
}

}  // namespace shardinit::detail
