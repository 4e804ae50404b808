#pragma once
// binary32 -> bfloat16 / binary16 with round-to-nearest-even, in integer arithmetic (so the result
// never depends on the FPU's rounding mode or on F16C being present), and back (exact: every
// bfloat16 and binary16 value is a binary32 value).

#include <bit>
#include <cstdint>

namespace shardinit::detail {

inline std::uint16_t bf16_from_f32(float value) noexcept {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  const std::uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

inline std::uint16_t f16_from_f32(float value) noexcept {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);  // NaN
  if (magnitude >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u); // rounds to infinity
  if (magnitude >= 0x38800000u) {  // normal binary16 result (|x| >= 2^-14)
    // Rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest-even.
    const std::uint32_t rebased = magnitude - 0x38000000u;
    const std::uint32_t rounded = rebased + 0x0FFFu + ((rebased >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | (rounded >> 13));
  }
  if (magnitude < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): zero
  // Subnormal binary16: shift the full significand right and round to nearest-even.
  const std::uint32_t exponent = magnitude >> 23;                 // 102 .. 112
  const std::uint32_t significand = (magnitude & 0x007FFFFFu) | 0x00800000u;
  const std::uint32_t shift = 126u - exponent;                    // 14 .. 24
  const std::uint32_t half = 1u << (shift - 1);
  const std::uint32_t remainder = significand & ((1u << shift) - 1u);
  std::uint32_t result = significand >> shift;
  if (remainder > half || (remainder == half && (result & 1u))) ++result;
  return static_cast<std::uint16_t>(sign | result);
}

inline float f32_from_bf16(std::uint16_t bits) noexcept { return std::bit_cast<float>(std::uint32_t{bits} << 16); }

inline float f32_from_f16(std::uint16_t half) noexcept {
  const std::uint32_t sign = std::uint32_t{half & 0x8000u} << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1Fu;
  std::uint32_t mantissa = half & 0x03FFu;
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return std::bit_cast<float>(sign);  // signed zero
  // Subnormal: m * 2^-24, normalized into binary32.
  int shift = 0;
  while ((mantissa & 0x0400u) == 0) {
    mantissa <<= 1;
    ++shift;
  }
  return std::bit_cast<float>(sign | ((113u - shift) << 23) | ((mantissa & 0x03FFu) << 13));
}

}  // namespace shardinit::detail
