// Highway's foreach_target compiles this file once per instruction set.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/kernels.cpp"
#include <hwy/foreach_target.h>  // must come before highway.h

#include <hwy/highway.h>

#include "distributions/half_precision.hpp"
#include "distributions/transforms.hpp"
#include "shardinit/engine/stream.hpp"
#include "simd/kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace shardinit::simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// High and low 32 bits of a * m for every u32 lane.
template <class D, class V>
HWY_INLINE void multiply_wide(D d, V a, V m, V& hi, V& lo) {
#if HWY_TARGET == HWY_SCALAR
  const std::uint64_t product = std::uint64_t{hn::GetLane(a)} * hn::GetLane(m);
  hi = hn::Set(d, static_cast<std::uint32_t>(product >> 32));
  lo = hn::Set(d, static_cast<std::uint32_t>(product));
#else
  const hn::Repartition<uint64_t, D> d64;
  lo = hn::Mul(a, m);
  const auto even = hn::MulEven(a, m);                                                   // even lanes, 64-bit
  const auto odd = hn::MulEven(hn::BitCast(d, hn::ShiftRight<32>(hn::BitCast(d64, a))), m);  // odd lanes moved down
  hi = hn::OddEven(hn::BitCast(d, odd), hn::BitCast(d, hn::ShiftRight<32>(even)));
#endif
}

// Philox4x32-10 on Lanes(d) blocks at once, counters in four vectors (structure of arrays).
template <class D, class V>
HWY_INLINE void philox_rounds(D d, V& c0, V& c1, V& c2, V& c3, Philox4x32::key_type key) {
  const V m0 = hn::Set(d, Philox4x32::kMultiplier0);
  const V m1 = hn::Set(d, Philox4x32::kMultiplier1);
  for (int r = 0; r < Philox4x32::kRounds; ++r) {
    if (r > 0) {
      key[0] += Philox4x32::kKeyIncrement0;
      key[1] += Philox4x32::kKeyIncrement1;
    }
    V hi0, lo0, hi1, lo1;
    multiply_wide(d, c0, m0, hi0, lo0);
    multiply_wide(d, c2, m1, hi1, lo1);
    const V k0 = hn::Set(d, key[0]);
    const V k1 = hn::Set(d, key[1]);
    c0 = hn::Xor(hn::Xor(hi1, c1), k0);
    c1 = lo1;
    c2 = hn::Xor(hn::Xor(hi0, c3), k1);
    c3 = lo0;
  }
}

// Counters of blocks first_block .. first_block + Lanes(d) - 1 (with the carry into the high word).
template <class D, class V = hn::Vec<D>>
HWY_INLINE void block_counters(D d, std::uint64_t first_block, std::uint64_t stream, V& c0, V& c1, V& c2, V& c3) {
  const V base_lo = hn::Set(d, static_cast<uint32_t>(first_block));
  c0 = hn::Add(base_lo, hn::Iota(d, 0));
  const auto carried = hn::Lt(c0, base_lo);
  c1 = hn::IfThenElse(carried, hn::Set(d, static_cast<uint32_t>((first_block >> 32) + 1)),
                      hn::Set(d, static_cast<uint32_t>(first_block >> 32)));
  c2 = hn::Set(d, static_cast<uint32_t>(stream));
  c3 = hn::Set(d, static_cast<uint32_t>(stream >> 32));
}

void PhiloxWords(Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block, std::size_t blocks,
                 std::uint32_t* HWY_RESTRICT out) {
  const hn::ScalableTag<uint32_t> d;
  const std::size_t N = hn::Lanes(d);
  std::size_t b = 0;
  for (; b + N <= blocks; b += N) {
    hn::Vec<decltype(d)> c0, c1, c2, c3;
    block_counters(d, first_block + b, stream, c0, c1, c2, c3);
    philox_rounds(d, c0, c1, c2, c3, key);
    hn::StoreInterleaved4(c0, c1, c2, c3, d, out + 4 * b);
  }
  for (; b < blocks; ++b) {  // fewer than a vector of blocks left
    const auto w = block_words(key, stream, first_block + b);
    for (int j = 0; j < 4; ++j) out[4 * b + j] = w[j];
  }
}

using UniformF32 = shardinit::detail::UniformTransform<float>;
using NormalF32 = shardinit::detail::NormalTransform<float>;
using TruncNormalF32 = shardinit::detail::TruncNormalTransform<float>;

#if HWY_TARGET != HWY_SCALAR
// detail::clamp_to on every lane: compare and select, as the scalar code (a vector Min/Max would
// treat signed zeros differently, and a NaN becomes lo in both).
template <class DF>
HWY_INLINE hn::Vec<DF> clamp_lanes(DF df, hn::Vec<DF> v, float lo, float hi) {
  const auto low = hn::Set(df, lo);
  const auto high = hn::Set(df, hi);
  v = hn::IfThenElse(hn::Ge(v, low), v, low);
  return hn::IfThenElse(hn::Gt(v, high), high, v);
}
#endif

// The uniform transform of one vector of words (one element per lane).
template <class D32>
HWY_INLINE hn::Vec<hn::Rebind<float, D32>> uniform_lanes(D32 d, hn::Vec<D32> words, const UniformF32& p) {
  const hn::Rebind<float, D32> df;
#if HWY_TARGET == HWY_SCALAR
  (void)d;
  return hn::Set(df, p(hn::GetLane(words)));  // one lane: no halves to split into
#else
  const hn::Half<decltype(df)> dfh;
  const hn::Half<D32> dh;
  const hn::Rebind<double, decltype(dh)> dd;
  const hn::Rebind<int32_t, decltype(dh)> di;
  const auto bits = hn::ShiftRight<8>(words);  // < 2^24: exact as int32 and as double
  const auto a = hn::Set(dd, p.a);
  const auto width = hn::Set(dd, p.width);
  const auto scale = hn::Set(dd, 0x1p-24);
  const auto convert = [&](auto half_bits) {
    const auto u = hn::Mul(hn::PromoteTo(dd, hn::BitCast(di, half_bits)), scale);  // exact
    return hn::DemoteTo(dfh, hn::Add(a, hn::Mul(width, u)));                       // a + width*u, then RN32
  };
  return clamp_lanes(df, hn::Combine(df, convert(hn::UpperHalf(dh, bits)), convert(hn::LowerHalf(dh, bits))), p.lo,
                     p.hi);
#endif
}

void UniformF32Blocks(const UniformF32& p, Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block,
                      std::size_t blocks, float* HWY_RESTRICT out) {
  const hn::ScalableTag<uint32_t> d;
  const hn::Rebind<float, decltype(d)> df;
  const std::size_t N = hn::Lanes(d);
  std::size_t b = 0;
  for (; b + N <= blocks; b += N) {
    hn::Vec<decltype(d)> c0, c1, c2, c3;
    block_counters(d, first_block + b, stream, c0, c1, c2, c3);
    philox_rounds(d, c0, c1, c2, c3, key);
    hn::StoreInterleaved4(uniform_lanes(d, c0, p), uniform_lanes(d, c1, p), uniform_lanes(d, c2, p),
                          uniform_lanes(d, c3, p), df, out + 4 * b);
  }
  if (b < blocks) {  // fewer than a vector of blocks left: the scalar reference
    alignas(64) std::uint32_t words[4 * hn::MaxLanes(d)];
    PhiloxWords(key, stream, first_block + b, blocks - b, words);
    for (std::size_t e = 0; e < 4 * (blocks - b); ++e) out[4 * b + e] = p(words[e]);
  }
}

// ---- normal (Box-Muller) in binary32 ----------------------------------------------------------------

#if HWY_TARGET != HWY_SCALAR
// Cephes logf, operation for operation as math::log(float), for normal positive inputs (the open
// uniforms are at least 2^-33, so the subnormal scaling of the scalar code never applies).
template <class DF>
HWY_INLINE hn::Vec<DF> log_f32(DF df, hn::Vec<DF> x) {
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  const auto bits = hn::BitCast(du, x);
  auto e = hn::Sub(hn::BitCast(di, hn::ShiftRight<23>(bits)), hn::Set(di, 126));
  auto m = hn::BitCast(df, hn::Or(hn::And(bits, hn::Set(du, 0x007FFFFFu)), hn::Set(du, 0x3F000000u)));
  const auto small = hn::Lt(m, hn::Set(df, 0.707106781186547524f));
  e = hn::IfThenElse(hn::RebindMask(di, small), hn::Sub(e, hn::Set(di, 1)), e);
  const auto one = hn::Set(df, 1.0f);
  m = hn::IfThenElse(small, hn::Sub(hn::Add(m, m), one), hn::Sub(m, one));
  const auto z = hn::Mul(m, m);
  auto y = hn::Set(df, 7.0376836292e-2f);
  y = hn::Sub(hn::Mul(y, m), hn::Set(df, 1.1514610310e-1f));
  y = hn::Add(hn::Mul(y, m), hn::Set(df, 1.1676998740e-1f));
  y = hn::Sub(hn::Mul(y, m), hn::Set(df, 1.2420140846e-1f));
  y = hn::Add(hn::Mul(y, m), hn::Set(df, 1.4249322787e-1f));
  y = hn::Sub(hn::Mul(y, m), hn::Set(df, 1.6668057665e-1f));
  y = hn::Add(hn::Mul(y, m), hn::Set(df, 2.0000714765e-1f));
  y = hn::Sub(hn::Mul(y, m), hn::Set(df, 2.4999993993e-1f));
  y = hn::Add(hn::Mul(y, m), hn::Set(df, 3.3333331174e-1f));
  y = hn::Mul(hn::Mul(y, m), z);
  const auto fe = hn::ConvertTo(df, e);
  y = hn::Add(y, hn::Mul(hn::Set(df, -2.12194440e-4f), fe));
  y = hn::Add(y, hn::Mul(hn::Set(df, -0.5f), z));
  auto r = hn::Add(m, y);
  return hn::Add(r, hn::Mul(hn::Set(df, 0.693359375f), fe));
}

template <class DF>
HWY_INLINE hn::Vec<DF> sin_octant_f32(DF df, hn::Vec<DF> x) {
  const auto z = hn::Mul(x, x);
  auto y = hn::Set(df, -1.9515295891e-4f);
  y = hn::Add(hn::Mul(y, z), hn::Set(df, 8.3321608736e-3f));
  y = hn::Sub(hn::Mul(y, z), hn::Set(df, 1.6666654611e-1f));
  return hn::Add(x, hn::Mul(hn::Mul(y, z), x));
}

template <class DF>
HWY_INLINE hn::Vec<DF> cos_octant_f32(DF df, hn::Vec<DF> x) {
  const auto z = hn::Mul(x, x);
  auto y = hn::Set(df, 2.443315711809948e-5f);
  y = hn::Sub(hn::Mul(y, z), hn::Set(df, 1.388731625493765e-3f));
  y = hn::Add(hn::Mul(y, z), hn::Set(df, 4.166664568298827e-2f));
  return hn::Add(hn::Sub(hn::Set(df, 1.0f), hn::Mul(hn::Set(df, 0.5f), z)), hn::Mul(hn::Mul(y, z), z));
}

// open_uniform32: RN32((k + 1/2) 2^-32), through binary64 where it is exact.
template <class DU>
HWY_INLINE hn::Vec<hn::Rebind<float, DU>> open_uniform_f32(DU du, hn::Vec<DU> k) {
  const hn::Rebind<float, DU> df;
  const hn::Half<decltype(df)> dfh;
  const hn::Half<DU> duh;
  const hn::Rebind<int32_t, decltype(duh)> dih;
  const hn::Rebind<double, decltype(duh)> dd;
  const auto convert = [&](auto half) {
    // k as a double: flip the top bit into a signed value, convert, add 2^31 back (all exact).
    const auto signed_k = hn::BitCast(dih, hn::Xor(half, hn::Set(duh, 0x80000000u)));
    const auto value = hn::Add(hn::PromoteTo(dd, signed_k), hn::Set(dd, 2147483648.0));
    return hn::DemoteTo(dfh, hn::Mul(hn::Add(value, hn::Set(dd, 0.5)), hn::Set(dd, 0x1p-32)));
  };
  return hn::Combine(df, convert(hn::UpperHalf(duh, k)), convert(hn::LowerHalf(duh, k)));
}

// One Box-Muller pair per lane: (mean + std (r cos), mean + std (r sin)).
template <class DU>
HWY_INLINE void normal_pairs(DU du, hn::Vec<DU> radius_bits, hn::Vec<DU> angle_bits, const NormalF32& p,
                             hn::Vec<hn::Rebind<float, DU>>& even, hn::Vec<hn::Rebind<float, DU>>& odd) {
  const hn::Rebind<float, DU> df;
  const hn::RebindToSigned<DU> di;
  const auto u = open_uniform_f32(du, radius_bits);
  const auto r = hn::Sqrt(hn::Mul(hn::Set(df, -2.0f), log_f32(df, u)));
  const auto t = hn::ShiftRight<8>(angle_bits);
  const auto m = hn::And(t, hn::Set(du, 0x3FFFFFu));
  const auto reflect = hn::Gt(m, hn::Set(du, 0x200000u));
  const auto h = hn::IfThenElse(reflect, hn::Sub(hn::Set(du, 0x400000u), m), m);  // <= 2^21: exact as float
  constexpr float kStep = static_cast<float>(1.57079632679489661923 * 0x1p-22);
  const auto phi = hn::Mul(hn::ConvertTo(df, hn::BitCast(di, h)), hn::Set(df, kStep));
  const auto sin_phi = sin_octant_f32(df, phi);
  const auto cos_phi = cos_octant_f32(df, phi);
  const auto reflect_f = hn::RebindMask(df, reflect);
  const auto S = hn::IfThenElse(reflect_f, cos_phi, sin_phi);
  const auto C = hn::IfThenElse(reflect_f, sin_phi, cos_phi);
  const auto quadrant = hn::ShiftRight<22>(t);
  const auto q1 = hn::RebindMask(df, hn::Eq(quadrant, hn::Set(du, 1u)));
  const auto q2 = hn::RebindMask(df, hn::Eq(quadrant, hn::Set(du, 2u)));
  const auto q3 = hn::RebindMask(df, hn::Eq(quadrant, hn::Set(du, 3u)));
  // (cos, sin) = (C, S), (-S, C), (-C, -S), (S, -C) for quadrants 0..3.
  auto c = hn::IfThenElse(q1, hn::Neg(S), C);
  c = hn::IfThenElse(q2, hn::Neg(C), c);
  c = hn::IfThenElse(q3, S, c);
  auto s = hn::IfThenElse(q1, C, S);
  s = hn::IfThenElse(q2, hn::Neg(S), s);
  s = hn::IfThenElse(q3, hn::Neg(C), s);
  const auto mean = hn::Set(df, p.mean);
  const auto std_dev = hn::Set(df, p.std);
  even = hn::Add(mean, hn::Mul(std_dev, hn::Mul(r, c)));
  odd = hn::Add(mean, hn::Mul(std_dev, hn::Mul(r, s)));
}

// Horner's rule with the coefficients highest degree first: ((c[0] r + c[1]) r + ...) + c[n-1].
template <class DF, std::size_t N>
HWY_INLINE hn::Vec<DF> horner(DF df, hn::Vec<DF> r, const float (&c)[N]) {
  auto y = hn::Set(df, c[0]);
  for (std::size_t i = 1; i < N; ++i) y = hn::Add(hn::Mul(y, r), hn::Set(df, c[i]));
  return y;
}

// math::normal_quantile(float) (AS 241 PPND7), both branches computed and selected per lane.
template <class DF>
HWY_INLINE hn::Vec<DF> normal_quantile_f32(DF df, hn::Vec<DF> p) {
  static constexpr float kA[] = {5.9109374720e+1f, 1.5929113202e+2f, 5.0434271938e+1f, 3.3871327179e+0f};
  static constexpr float kB[] = {6.7187563600e+1f, 7.8757757664e+1f, 1.7895169469e+1f, 1.0f};
  static constexpr float kC[] = {1.7023821103e-1f, 1.3067284816e+0f, 2.7568153900e+0f, 1.4234372777e+0f};
  static constexpr float kD[] = {1.2021132975e-1f, 7.3700164250e-1f, 1.0f};
  static constexpr float kE[] = {1.7337203997e-2f, 4.2868294337e-1f, 3.0812263860e+0f, 6.6579051150e+0f};
  static constexpr float kF[] = {1.2258202635e-2f, 2.4197894225e-1f, 1.0f};
  const auto q = hn::Sub(p, hn::Set(df, 0.5f));
  const auto central = hn::And(hn::Le(q, hn::Set(df, 0.425f)), hn::Ge(q, hn::Set(df, -0.425f)));
  const auto rc = hn::Sub(hn::Set(df, 0.180625f), hn::Mul(q, q));
  const auto value_central = hn::Div(hn::Mul(q, horner(df, rc, kA)), horner(df, rc, kB));
  const auto negative = hn::Lt(q, hn::Zero(df));
  auto r = hn::IfThenElse(negative, p, hn::Sub(hn::Set(df, 1.0f), p));
  r = hn::Sqrt(hn::Neg(log_f32(df, r)));
  const auto near = hn::Le(r, hn::Set(df, 5.0f));
  const auto r1 = hn::Sub(r, hn::Set(df, 1.6f));
  const auto r2 = hn::Sub(r, hn::Set(df, 5.0f));
  const auto value_near = hn::Div(horner(df, r1, kC), horner(df, r1, kD));
  const auto value_far = hn::Div(horner(df, r2, kE), horner(df, r2, kF));
  auto tail = hn::IfThenElse(near, value_near, value_far);
  tail = hn::IfThenElse(negative, hn::Neg(tail), tail);
  return hn::IfThenElse(central, value_central, tail);
}

template <class DU>
HWY_INLINE hn::Vec<hn::Rebind<float, DU>> trunc_normal_lanes(DU du, hn::Vec<DU> bits, const TruncNormalF32& p) {
  const hn::Rebind<float, DU> df;
  const auto delta = hn::Set(df, p.delta);
  const auto p_low = hn::Add(hn::Set(df, p.p_alpha), hn::Mul(open_uniform_f32(du, bits), delta));
  const auto p_high = hn::Add(hn::Set(df, p.q_beta), hn::Mul(open_uniform_f32(du, hn::Not(bits)), delta));
  const auto low = hn::Le(p_low, hn::Set(df, 0.5f));
  const auto x_abs = normal_quantile_f32(df, hn::IfThenElse(low, p_low, p_high));
  const auto x = hn::IfThenElse(low, x_abs, hn::Neg(x_abs));
  return clamp_lanes(df, hn::Add(hn::Set(df, p.mean_r), hn::Mul(hn::Set(df, p.std_r), x)), p.lo, p.hi);
}
#endif

// Runs a transform over whole vectors of blocks given as words (block order): `vector(w0, w1, w2, w3)`
// maps the four words of Lanes blocks to their four elements each; returns how many blocks it did
// (0 on the scalar target), the rest being the caller's.
template <class Vector>
HWY_INLINE std::size_t vector_blocks(const std::uint32_t* HWY_RESTRICT words, std::size_t blocks,
                                     float* HWY_RESTRICT out, const Vector& vector) {
  std::size_t b = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<uint32_t> du;
  const hn::Rebind<float, decltype(du)> df;
  const std::size_t N = hn::Lanes(du);
  for (; b + N <= blocks; b += N) {
    hn::Vec<decltype(du)> w0, w1, w2, w3;
    hn::LoadInterleaved4(du, words + 4 * b, w0, w1, w2, w3);
    hn::Vec<decltype(df)> e0, e1, e2, e3;
    vector(du, w0, w1, w2, w3, e0, e1, e2, e3);
    hn::StoreInterleaved4(e0, e1, e2, e3, df, out + 4 * b);
  }
#else
  (void)words, (void)blocks, (void)out, (void)vector;
#endif
  return b;
}

void TruncNormalF32FromWords(const TruncNormalF32& p, const std::uint32_t* HWY_RESTRICT words, std::size_t blocks,
                             float* HWY_RESTRICT out) {
  const std::size_t done = vector_blocks(words, blocks, out, [&p](auto du, auto w0, auto w1, auto w2, auto w3, auto& e0,
                                                                   auto& e1, auto& e2, auto& e3) {
#if HWY_TARGET != HWY_SCALAR
    e0 = trunc_normal_lanes(du, w0, p);
    e1 = trunc_normal_lanes(du, w1, p);
    e2 = trunc_normal_lanes(du, w2, p);
    e3 = trunc_normal_lanes(du, w3, p);
#endif
  });
  for (std::size_t e = 4 * done; e < 4 * blocks; ++e) out[e] = p(words[e]);  // the scalar reference
}

void Bf16FromF32(const float* HWY_RESTRICT in, std::size_t n, std::uint16_t* HWY_RESTRICT out) {
  std::size_t i = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<uint32_t> du;
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(du)> di;
  const hn::Rebind<uint16_t, decltype(du)> d16;
  const std::size_t N = hn::Lanes(du);
  for (; i + N <= n; i += N) {
    const auto bits = hn::BitCast(du, hn::LoadU(df, in + i));
    const auto is_nan = hn::Gt(hn::And(bits, hn::Set(du, 0x7FFFFFFFu)), hn::Set(du, 0x7F800000u));
    const auto rounded = hn::ShiftRight<16>(
        hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u)))));
    const auto quiet_nan = hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x0040u));
    const auto result = hn::IfThenElse(is_nan, quiet_nan, rounded);  // every lane < 2^16
    hn::StoreU(hn::DemoteTo(d16, hn::BitCast(di, result)), d16, out + i);
  }
#endif
  for (; i < n; ++i) out[i] = shardinit::detail::bf16_from_f32(in[i]);
}

void NormalF32FromWords(const NormalF32& p, const std::uint32_t* HWY_RESTRICT words, std::size_t blocks,
                        float* HWY_RESTRICT out) {
  const std::size_t done = vector_blocks(words, blocks, out, [&p](auto du, auto w0, auto w1, auto w2, auto w3, auto& e0,
                                                                   auto& e1, auto& e2, auto& e3) {
#if HWY_TARGET != HWY_SCALAR
    normal_pairs(du, w0, w1, p, e0, e1);
    normal_pairs(du, w2, w3, p, e2, e3);
#endif
  });
  for (std::size_t e = 4 * done; e < 4 * blocks; e += 2) {  // the scalar reference, pair by pair
    const auto [even, odd] = p(words[e], words[e + 1]);
    out[e] = even;
    out[e + 1] = odd;
  }
}

}  // namespace shardinit::simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace shardinit::simd {

HWY_EXPORT(PhiloxWords);
HWY_EXPORT(UniformF32Blocks);
HWY_EXPORT(NormalF32FromWords);
HWY_EXPORT(TruncNormalF32FromWords);
HWY_EXPORT(Bf16FromF32);

namespace {
bool g_enabled = true;
}

void set_enabled(bool enabled) noexcept { g_enabled = enabled; }
bool enabled() noexcept { return g_enabled; }

const char* target_name() {
  // Dynamic dispatch takes the best target both compiled and supported: the lowest such bit.
  const std::int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  return hwy::TargetName(targets & -targets);
}

void philox_words(Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block, std::size_t blocks,
                  std::uint32_t* out) {
  HWY_DYNAMIC_DISPATCH(PhiloxWords)(key, stream, first_block, blocks, out);
}

void uniform_f32(const detail::UniformTransform<float>& params, Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block,
                 std::size_t blocks, float* out) {
  HWY_DYNAMIC_DISPATCH(UniformF32Blocks)(params, key, stream, first_block, blocks, out);
}

void normal_f32_from_words(const detail::NormalTransform<float>& params, const std::uint32_t* words,
                           std::size_t blocks, float* out) {
  HWY_DYNAMIC_DISPATCH(NormalF32FromWords)(params, words, blocks, out);
}

void trunc_normal_f32_from_words(const detail::TruncNormalTransform<float>& params, const std::uint32_t* words,
                                 std::size_t blocks, float* out) {
  HWY_DYNAMIC_DISPATCH(TruncNormalF32FromWords)(params, words, blocks, out);
}

void bf16_from_f32(const float* in, std::size_t n, std::uint16_t* out) { HWY_DYNAMIC_DISPATCH(Bf16FromF32)(in, n, out); }

}  // namespace shardinit::simd
#endif
