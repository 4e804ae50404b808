#pragma once
// Vectorized kernels of stream format v1, written once with Highway and dispatched at run time to
// the best instruction set of the machine (SSE4, AVX2, AVX-512, or Highway's scalar target). Every
// kernel produces exactly the bits of the scalar reference in src/distributions and src/fill: integer
// Philox, and for floating point only the same IEEE operations in the same order (no FMA: the library
// is built with -ffp-contract=off, and the kernels call Mul and Add, never MulAdd).

#include <cstddef>
#include <cstdint>

#include "distributions/transforms.hpp"
#include "shardinit/engine/philox.hpp"

namespace shardinit::simd {

// The words of `blocks` consecutive Philox blocks of `stream`, from block `first_block`, in block
// order: out[4 b + j] is word j of block first_block + b (the element order of the 32-bit types).
void philox_words(Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block, std::size_t blocks,
                  std::uint32_t* out);

// Each transform kernel takes the scalar reference transform itself: the vector code reads its
// constants, and whatever is left over (a tail shorter than a vector, Highway's scalar target) goes
// through the reference's own operator().

// The f32 uniform transform (docs/stream-format.md 5.2) of `blocks` whole blocks:
// out[e] = clamp(RN32(a + width * ((word_e >> 8) * 2^-24)), lo, hi). Not for a degenerate transform.
void uniform_f32(const detail::UniformTransform<float>& transform, Philox4x32::key_type key, std::uint64_t stream,
                 std::uint64_t first_block, std::size_t blocks, float* out);

// The same values rounded to bf16 (as detail::bf16_from_f32), without an f32 copy in memory.
void uniform_bf16(const detail::UniformTransform<float>& transform, Philox4x32::key_type key, std::uint64_t stream,
                  std::uint64_t first_block, std::size_t blocks, std::uint16_t* out);

// The f64 uniform transform (docs/stream-format.md 5.2) of `blocks` whole blocks, two elements per
// block: out[e] = clamp(a + width * ((K_e >> 11) * 2^-53), lo, hi) in binary64. Not degenerate.
void uniform_f64(const detail::UniformTransform<double>& transform, Philox4x32::key_type key, std::uint64_t stream,
                 std::uint64_t first_block, std::size_t blocks, double* out);

// uniform_f32 or uniform_f64, by the transform's type.
inline void uniform_blocks(const detail::UniformTransform<float>& transform, Philox4x32::key_type key,
                           std::uint64_t stream, std::uint64_t first_block, std::size_t blocks, float* out) {
  uniform_f32(transform, key, stream, first_block, blocks, out);
}
inline void uniform_blocks(const detail::UniformTransform<double>& transform, Philox4x32::key_type key,
                           std::uint64_t stream, std::uint64_t first_block, std::size_t blocks, double* out) {
  uniform_f64(transform, key, stream, first_block, blocks, out);
}

// The f32 normal transform (docs/stream-format.md 5.3) of `blocks` blocks whose words are given in
// block order (as philox_words writes them): Box-Muller on the pairs (w0, w1) and (w2, w3),
// out[e] = mean + std * (r * cos or sin), all in binary32 as the scalar reference computes it.
void normal_f32_from_words(const detail::NormalTransform<float>& transform, const std::uint32_t* words,
                           std::size_t blocks, float* out);

// The same values rounded to bf16 (as detail::bf16_from_f32, NaN quieted), for `blocks` whole blocks
// from `first_block`, without words or an f32 copy in memory.
void normal_bf16(const detail::NormalTransform<float>& transform, Philox4x32::key_type key, std::uint64_t stream,
                 std::uint64_t first_block, std::size_t blocks, std::uint16_t* out);

// The f32 truncated normal transform, central method only (docs/stream-format.md 5.4): one element
// per word, inverse CDF with AS 241 PPND7. The narrow and far-tail methods stay scalar (binary64).
void trunc_normal_f32_from_words(const detail::TruncNormalTransform<float>& transform, const std::uint32_t* words,
                                 std::size_t blocks, float* out);

// bf16 bit patterns of `n` f32 values: round to nearest even in integer arithmetic, NaN quieted, as
// detail::bf16_from_f32 (never the hardware conversion, which flushes subnormal inputs).
void bf16_from_f32(const float* in, std::size_t n, std::uint16_t* out);

// f16 bit patterns of `n` f32 values as detail::f16_from_f32: round to nearest even, subnormal
// results kept, overflow to infinity, NaN quieted (never the hardware conversion, absent on SSE4).
void f16_from_f32(const float* in, std::size_t n, std::uint16_t* out);

// For tests: run the scalar reference instead of the kernels (`enabled` false), and name the
// instruction set the kernels dispatch to ("AVX3", "AVX2", "SSE4", "EMU128", "SCALAR", ...).
void set_enabled(bool enabled) noexcept;
[[nodiscard]] bool enabled() noexcept;
[[nodiscard]] const char* target_name();

}  // namespace shardinit::simd
