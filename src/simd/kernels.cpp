// Highway's foreach_target compiles this file once per instruction set.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/kernels.cpp"
#include <hwy/foreach_target.h>  // must come before highway.h

#include <hwy/highway.h>

#include <bit>
#include <cmath>

#include "distributions/half_precision.hpp"
#include "distributions/transforms.hpp"
#include "shardinit/engine/stream.hpp"
#include "simd/kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace shardinit::simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Philox4x32-10 of blocks first_block .. first_block + Lanes(d) - 1, one block per lane, its four
// words in four vectors (structure of arrays). On vector targets the rounds run on 64-bit lanes, two
// vectors of Lanes(d) / 2 blocks: MulEven then gives each whole 64-bit product in one instruction
// (the high word is a shift away, the low word is the lane's low half), where 32-bit lanes need a
// low multiply, two even multiplies and a blend per product. Only the low half of a 64-bit lane is
// a word: the multiplies read only low halves, XOR keeps the halves apart, and the words are packed
// back into 32-bit lanes at the end, so the high halves' leftovers never reach a result.
//
// The key of every round as whole vectors in memory, made once per call of a kernel: a round then
// reads its keys as operands from L1, where a broadcast from a general register would take a vector
// port in every round of every block.
struct RoundKeys {
  static constexpr std::size_t kLanes = HWY_MAX_BYTES / sizeof(std::uint64_t);
  Philox4x32::key_type key;
  alignas(HWY_MAX_BYTES) std::uint64_t k0[Philox4x32::kRounds][kLanes];
  alignas(HWY_MAX_BYTES) std::uint64_t k1[Philox4x32::kRounds][kLanes];
  explicit RoundKeys(Philox4x32::key_type k) : key(k) {
    for (int r = 0; r < Philox4x32::kRounds; ++r) {
      if (r > 0) {
        k[0] += Philox4x32::kKeyIncrement0;
        k[1] += Philox4x32::kKeyIncrement1;
      }
      for (std::size_t i = 0; i < kLanes; ++i) {
        k0[r][i] = k[0];
        k1[r][i] = k[1];
      }
    }
  }
};

template <class D, class V = hn::Vec<D>>
HWY_INLINE void philox_blocks(D d, std::uint64_t first_block, std::uint64_t stream, const RoundKeys& keys, V& c0, V& c1,
                              V& c2, V& c3) {
#if HWY_TARGET == HWY_SCALAR
  const auto w = block_words(keys.key, stream, first_block);  // one lane, one block: the reference engine
  c0 = hn::Set(d, w[0]);
  c1 = hn::Set(d, w[1]);
  c2 = hn::Set(d, w[2]);
  c3 = hn::Set(d, w[3]);
#else
  const hn::Repartition<uint64_t, D> d64;
  using V64 = hn::Vec<decltype(d64)>;
  const std::size_t H = hn::Lanes(d64);
  const V m0 = hn::Set(d, Philox4x32::kMultiplier0);
  const V m1 = hn::Set(d, Philox4x32::kMultiplier1);
  // Two halves: blocks first .. first + H - 1 and first + H .. first + 2H - 1 (64-bit counters: the
  // carry into the high word is the addition's own).
  V64 w0[2], w1[2], w2[2], w3[2];
  for (int half = 0; half < 2; ++half) {
    const V64 block = hn::Add(hn::Set(d64, first_block + half * H), hn::Iota(d64, 0));
    w0[half] = block;  // lo(B) in the low half
    w1[half] = hn::ShiftRight<32>(block);
    w2[half] = hn::Set(d64, stream & 0xFFFFFFFFu);
    w3[half] = hn::Set(d64, stream >> 32);
  }
  for (int r = 0; r < Philox4x32::kRounds; ++r) {
    const V64 k0 = hn::Load(d64, keys.k0[r]);
    const V64 k1 = hn::Load(d64, keys.k1[r]);
    for (int half = 0; half < 2; ++half) {
      const V64 p0 = hn::MulEven(hn::BitCast(d, w0[half]), m0);  // c0 * M0, all 64 bits
      const V64 p1 = hn::MulEven(hn::BitCast(d, w2[half]), m1);  // c2 * M1
      w0[half] = hn::Xor(hn::Xor(hn::ShiftRight<32>(p1), w1[half]), k0);
      w1[half] = p1;  // lo(c2 * M1) in the low half
      w2[half] = hn::Xor(hn::Xor(hn::ShiftRight<32>(p0), w3[half]), k1);
      w3[half] = p0;  // lo(c0 * M0)
    }
  }
  const auto pack = [d](V64 lower, V64 upper) { return hn::ConcatEven(d, hn::BitCast(d, upper), hn::BitCast(d, lower)); };
  c0 = pack(w0[0], w0[1]);
  c1 = pack(w1[0], w1[1]);
  c2 = pack(w2[0], w2[1]);
  c3 = pack(w3[0], w3[1]);
#endif
}

void PhiloxWords(Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block, std::size_t blocks,
                 std::uint32_t* HWY_RESTRICT out) {
  const hn::ScalableTag<uint32_t> d;
  const std::size_t N = hn::Lanes(d);
  const RoundKeys keys(key);
  std::size_t b = 0;
  for (; b + N <= blocks; b += N) {
    hn::Vec<decltype(d)> c0, c1, c2, c3;
    philox_blocks(d, first_block + b, stream, keys, c0, c1, c2, c3);
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
  const RoundKeys keys(key);
  std::size_t b = 0;
  for (; b + N <= blocks; b += N) {
    hn::Vec<decltype(d)> c0, c1, c2, c3;
    philox_blocks(d, first_block + b, stream, keys, c0, c1, c2, c3);
    hn::StoreInterleaved4(uniform_lanes(d, c0, p), uniform_lanes(d, c1, p), uniform_lanes(d, c2, p),
                          uniform_lanes(d, c3, p), df, out + 4 * b);
  }
  if (b < blocks) {  // fewer than a vector of blocks left: the scalar reference
    alignas(64) std::uint32_t words[4 * hn::MaxLanes(d)];
    PhiloxWords(key, stream, first_block + b, blocks - b, words);
    for (std::size_t e = 0; e < 4 * (blocks - b); ++e) out[4 * b + e] = p(words[e]);
  }
}

using UniformF64 = shardinit::detail::UniformTransform<double>;

#if HWY_TARGET != HWY_SCALAR
// The f64 uniform transform of the blocks in one half of the lanes: element 0 of a block takes the
// bits w0 | w1 << 32, element 1 w2 | w3 << 32 (Lanes<double>::element_bits), then
// clamp(a + width * ((K >> 11) * 2^-53)) in binary64, as the scalar code.
template <class DU64>
HWY_INLINE hn::Vec<hn::Rebind<double, DU64>> uniform_f64_lanes(DU64 du64, hn::Vec<DU64> low, hn::Vec<DU64> high,
                                                               const UniformF64& p) {
  const hn::Rebind<double, DU64> dd;
  const hn::RebindToSigned<DU64> di64;
  const auto bits = hn::ShiftRight<11>(hn::Or(low, hn::ShiftLeft<32>(high)));  // < 2^53: exact as int64 and double
  const auto u = hn::Mul(hn::ConvertTo(dd, hn::BitCast(di64, bits)), hn::Set(dd, 0x1p-53));
  auto v = hn::Add(hn::Set(dd, p.a), hn::Mul(hn::Set(dd, p.width), u));
  const auto lo = hn::Set(dd, p.lo), hi = hn::Set(dd, p.hi);
  v = hn::IfThenElse(hn::Ge(v, lo), v, lo);  // detail::clamp_to, compare and select
  return hn::IfThenElse(hn::Gt(v, hi), hi, v);
}
#endif

void UniformF64Blocks(const UniformF64& p, Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block,
                      std::size_t blocks, double* HWY_RESTRICT out) {
  std::size_t b = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<uint32_t> d;
  const hn::Half<decltype(d)> dh;
  const hn::Rebind<uint64_t, decltype(dh)> du64;
  const hn::Rebind<double, decltype(du64)> dd;
  const std::size_t N = hn::Lanes(d), H = hn::Lanes(du64);
  const RoundKeys keys(key);
  for (; b + N <= blocks; b += N) {
    hn::Vec<decltype(d)> c0, c1, c2, c3;
    philox_blocks(d, first_block + b, stream, keys, c0, c1, c2, c3);
    const auto widen = [&](auto half) { return hn::PromoteTo(du64, half); };  // keeps the lane (block) order
    hn::StoreInterleaved2(uniform_f64_lanes(du64, widen(hn::LowerHalf(dh, c0)), widen(hn::LowerHalf(dh, c1)), p),
                          uniform_f64_lanes(du64, widen(hn::LowerHalf(dh, c2)), widen(hn::LowerHalf(dh, c3)), p), dd,
                          out + 2 * b);
    hn::StoreInterleaved2(uniform_f64_lanes(du64, widen(hn::UpperHalf(dh, c0)), widen(hn::UpperHalf(dh, c1)), p),
                          uniform_f64_lanes(du64, widen(hn::UpperHalf(dh, c2)), widen(hn::UpperHalf(dh, c3)), p), dd,
                          out + 2 * (b + H));
  }
#endif
  for (; b < blocks; ++b) {  // fewer than a vector of blocks left (or the scalar target): the reference
    const auto w = block_words(key, stream, first_block + b);
    out[2 * b] = p(shardinit::detail::Lanes<double>::element_bits(w, 0));
    out[2 * b + 1] = p(shardinit::detail::Lanes<double>::element_bits(w, 1));
  }
}

// The bf16 pattern of every lane of f32 bit patterns, rounded to nearest even in integer arithmetic
// as detail::bf16_from_f32 rounds (a NaN is the caller's to handle), in the low 16 bits of each lane.
template <class DU>
HWY_INLINE hn::Vec<DU> bf16_rounded(DU du, hn::Vec<DU> bits) {
  return hn::ShiftRight<16>(hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u)))));
}

// 32-bit lanes each holding a 16-bit pattern, narrowed to 16-bit lanes.
template <class DU>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DU>> narrow_to_16(DU du, hn::Vec<DU> patterns) {
  const hn::RebindToSigned<DU> di;
  return hn::DemoteTo(hn::Rebind<uint16_t, DU>(), hn::BitCast(di, patterns));  // every lane < 2^16: exact
}

// bf16 bit patterns of one vector of finite or infinite f32 values (the transforms never make a NaN),
// in the low 16 bits of each lane.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> bf16_lanes_not_nan(DF, hn::Vec<DF> values) {
  const hn::RebindToUnsigned<DF> du;
  return bf16_rounded(du, hn::BitCast(du, values));
}

// Stores the 16-bit patterns of four elements per block (in the low 16 bits of 32-bit lanes, one
// block per lane) in block order: out[4 i + j] = e_j[i]. Two elements share a 32-bit lane first
// (e1 << 16 | e0 is e0 then e1 in little-endian memory), so that only 32-bit lanes are interleaved.
template <class DU>
HWY_INLINE void store_16bit_blocks(DU du, hn::Vec<DU> e0, hn::Vec<DU> e1, hn::Vec<DU> e2, hn::Vec<DU> e3,
                                   std::uint16_t* HWY_RESTRICT out) {
  static_assert(std::endian::native == std::endian::little, "two 16-bit elements are packed into one 32-bit lane");
  hn::StoreInterleaved2(hn::Or(hn::ShiftLeft<16>(e1), e0), hn::Or(hn::ShiftLeft<16>(e3), e2), du,
                        reinterpret_cast<std::uint32_t*>(out));
}

void UniformBf16Blocks(const UniformF32& p, Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block,
                       std::size_t blocks, std::uint16_t* HWY_RESTRICT out) {
  std::size_t b = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<uint32_t> d;
  const hn::Rebind<float, decltype(d)> df;
  const std::size_t N = hn::Lanes(d);
  const RoundKeys keys(key);
  for (; b + N <= blocks; b += N) {
    hn::Vec<decltype(d)> c0, c1, c2, c3;
    philox_blocks(d, first_block + b, stream, keys, c0, c1, c2, c3);
    store_16bit_blocks(d, bf16_lanes_not_nan(df, uniform_lanes(d, c0, p)), bf16_lanes_not_nan(df, uniform_lanes(d, c1, p)),
                       bf16_lanes_not_nan(df, uniform_lanes(d, c2, p)), bf16_lanes_not_nan(df, uniform_lanes(d, c3, p)), out + 4 * b);
  }
#endif
  for (; b < blocks; ++b) {  // fewer than a vector of blocks left (or the scalar target): the reference
    const auto w = block_words(key, stream, first_block + b);
    for (int j = 0; j < 4; ++j) out[4 * b + j] = shardinit::detail::bf16_from_f32(p(w[j]));
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

// open_uniform32: RN32((k + 1/2) 2^-32) in binary32 alone, rounded once. k is split into its top 24
// bits, (k >> 8) 2^-24, and the rest, ((k & 255) + 1/2) 2^-32: each term is exact in binary32
// (24 and 9 significant bits, both far above the subnormals), so their sum, one IEEE addition, is
// the exact value rounded once, as the scalar code's binary64 value rounded to binary32.
template <class DU>
HWY_INLINE hn::Vec<hn::Rebind<float, DU>> open_uniform_f32(DU du, hn::Vec<DU> k) {
  const hn::Rebind<float, DU> df;
  const hn::RebindToSigned<DU> di;
  const auto top = hn::Mul(hn::ConvertTo(df, hn::BitCast(di, hn::ShiftRight<8>(k))), hn::Set(df, 0x1p-24f));
  const auto rest = hn::Add(hn::Mul(hn::ConvertTo(df, hn::BitCast(di, hn::And(k, hn::Set(du, 0xFFu)))), hn::Set(df, 0x1p-32f)),
                            hn::Set(df, 0x1p-33f));
  return hn::Add(top, rest);
}

// open_uniform32 of k and of ~k, each rounded once from its exact value as open_uniform_f32 makes it
// (the scalar code's RN32(1 - v) for ~k is the same number: 1 - v = (~k + 1/2) 2^-32 exactly).
template <class DU>
HWY_INLINE void open_uniform_pair_f32(DU du, hn::Vec<DU> k, hn::Vec<hn::Rebind<float, DU>>& u,
                                      hn::Vec<hn::Rebind<float, DU>>& u_of_not_k) {
  u = open_uniform_f32(du, k);
  u_of_not_k = open_uniform_f32(du, hn::Not(k));
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
  // With (S, C) = (sin, cos), swapped if reflect, (cos, sin) = (C, S), (-S, C), (-C, -S), (S, -C)
  // for quadrants q = 0..3 (q = angle_bits >> 30). That is: the magnitudes swap once more in the odd
  // quadrants, cos is negative in quadrants 1 and 2 (bit 31 XOR bit 30 of angle_bits), sin in 2 and
  // 3 (bit 31). Negation is a flip of the sign bit (sin and cos of [0, pi/4] are +0 or positive), so
  // setting the sign by XOR gives the scalar code's bits, signed zeros included.
  const auto odd_quadrant = hn::Ne(hn::And(angle_bits, hn::Set(du, 0x40000000u)), hn::Zero(du));
  const auto swap = hn::RebindMask(df, hn::Xor(reflect, odd_quadrant));
  const auto sign = hn::Set(du, 0x80000000u);
  const auto cos_sign = hn::And(hn::Xor(angle_bits, hn::ShiftLeft<1>(angle_bits)), sign);
  const auto sin_sign = hn::And(angle_bits, sign);
  const auto c = hn::BitCast(df, hn::Xor(hn::BitCast(du, hn::IfThenElse(swap, sin_phi, cos_phi)), cos_sign));
  const auto s = hn::BitCast(df, hn::Xor(hn::BitCast(du, hn::IfThenElse(swap, cos_phi, sin_phi)), sin_sign));
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

// The truncated normal's central method (math::normal_quantile(float), AS 241 PPND7) in two passes.
// Most probabilities fall in PPND7's central region, a rational function of q = p - 1/2; the few in
// its tails also need a logarithm, a square root and a second rational function. Evaluating every
// branch on every lane would spend most of the time on the tails, so the first pass finishes the
// central lanes and sets the others aside (their probability and output position, compressed), and
// the second pass runs the tail branch on those alone, a full vector at a time. Each lane still
// goes through exactly the scalar reference's operations, whichever pass finishes it.

// Where the first pass sets a tail lane aside: its probability, and its output position with the
// top bit set when the probability is the lower one (the value keeps the quantile's sign).
struct TailLanes {
  static constexpr std::uint32_t kLowFlag = 0x80000000u;
  std::size_t count = 0;
  float* probability;
  std::uint32_t* position;
};

// The distribution's value of a standard normal quantile x: clamp(mean + std x, lo, hi).
template <class DF>
HWY_INLINE hn::Vec<DF> trunc_normal_value(DF df, hn::Vec<DF> x, const TruncNormalF32& p) {
  return clamp_lanes(df, hn::Add(hn::Set(df, p.mean_r), hn::Mul(hn::Set(df, p.std_r), x)), p.lo, p.hi);
}

// First pass over one vector of words whose elements go to out positions `positions`.
template <class DU>
HWY_INLINE hn::Vec<hn::Rebind<float, DU>> trunc_normal_central(DU du, hn::Vec<DU> bits, hn::Vec<DU> positions,
                                                               const TruncNormalF32& p, TailLanes& tails) {
  const hn::Rebind<float, DU> df;
  hn::Vec<decltype(df)> u, v;
  open_uniform_pair_f32(du, bits, u, v);
  const auto delta = hn::Set(df, p.delta);
  const auto p_low = hn::Add(hn::Set(df, p.p_alpha), hn::Mul(u, delta));
  const auto p_high = hn::Add(hn::Set(df, p.q_beta), hn::Mul(v, delta));
  const auto low = hn::Le(p_low, hn::Set(df, 0.5f));
  const auto probability = hn::IfThenElse(low, p_low, p_high);
  const auto q = hn::Sub(probability, hn::Set(df, 0.5f));
  const auto central = hn::And(hn::Le(q, hn::Set(df, 0.425f)), hn::Ge(q, hn::Set(df, -0.425f)));
  const auto tail = hn::Not(central);
  if (!hn::AllFalse(df, tail)) {
    const auto flagged = hn::IfThenElse(hn::RebindMask(du, low), hn::Or(positions, hn::Set(du, TailLanes::kLowFlag)),
                                        positions);
    hn::CompressStore(flagged, hn::RebindMask(du, tail), du, tails.position + tails.count);
    tails.count += hn::CompressStore(probability, tail, df, tails.probability + tails.count);
  }
  static constexpr float kNum[] = {5.9109374720e+1f, 1.5929113202e+2f, 5.0434271938e+1f, 3.3871327179e+0f};
  static constexpr float kDen[] = {6.7187563600e+1f, 7.8757757664e+1f, 1.7895169469e+1f, 1.0f};
  const auto r = hn::Sub(hn::Set(df, 0.180625f), hn::Mul(q, q));
  const auto x_abs = hn::Div(hn::Mul(q, horner(df, r, kNum)), horner(df, r, kDen));
  return trunc_normal_value(df, hn::IfThenElse(low, x_abs, hn::Neg(x_abs)), p);
}

// Second pass: the tail branch of PPND7 for one vector of set-aside lanes.
template <class DU>
HWY_INLINE hn::Vec<hn::Rebind<float, DU>> trunc_normal_tail(DU du, hn::Vec<hn::Rebind<float, DU>> probability,
                                                            hn::Vec<DU> flagged, const TruncNormalF32& p) {
  const hn::Rebind<float, DU> df;
  static constexpr float kNearNum[] = {1.7023821103e-1f, 1.3067284816e+0f, 2.7568153900e+0f, 1.4234372777e+0f};
  static constexpr float kNearDen[] = {1.2021132975e-1f, 7.3700164250e-1f, 1.0f};
  static constexpr float kFarNum[] = {1.7337203997e-2f, 4.2868294337e-1f, 3.0812263860e+0f, 6.6579051150e+0f};
  static constexpr float kFarDen[] = {1.2258202635e-2f, 2.4197894225e-1f, 1.0f};
  const auto negative = hn::Lt(hn::Sub(probability, hn::Set(df, 0.5f)), hn::Zero(df));
  const auto r = hn::Sqrt(
      hn::Neg(log_f32(df, hn::IfThenElse(negative, probability, hn::Sub(hn::Set(df, 1.0f), probability)))));
  const auto r_near = hn::Sub(r, hn::Set(df, 1.6f));
  const auto r_far = hn::Sub(r, hn::Set(df, 5.0f));
  auto value = hn::IfThenElse(hn::Le(r, hn::Set(df, 5.0f)), hn::Div(horner(df, r_near, kNearNum), horner(df, r_near, kNearDen)),
                              hn::Div(horner(df, r_far, kFarNum), horner(df, r_far, kFarDen)));
  value = hn::IfThenElse(negative, hn::Neg(value), value);  // the quantile
  const auto low = hn::RebindMask(df, hn::Ne(hn::And(flagged, hn::Set(du, TailLanes::kLowFlag)), hn::Zero(du)));
  return trunc_normal_value(df, hn::IfThenElse(low, value, hn::Neg(value)), p);
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
  std::size_t b = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<uint32_t> du;
  const hn::Rebind<float, decltype(du)> df;
  const std::size_t N = hn::Lanes(du);
  constexpr std::size_t kBlocksPerPass = 256;  // the set-aside lanes of 1024 elements stay in L1
  alignas(64) float tail_probability[4 * kBlocksPerPass + hn::MaxLanes(df)];
  alignas(64) std::uint32_t tail_position[4 * kBlocksPerPass + hn::MaxLanes(du)];
  alignas(64) float tail_value[hn::MaxLanes(df)];
  alignas(64) std::uint32_t tail_at[hn::MaxLanes(du)];
  const auto four_iota = hn::ShiftLeft<2>(hn::Iota(du, 0));  // lane i holds block i's first element
  while (b + N <= blocks) {
    const std::size_t pass_end = b + std::min(kBlocksPerPass, (blocks - b) / N * N);
    float* HWY_RESTRICT pass_out = out + 4 * b;
    TailLanes tails{0, tail_probability, tail_position};
    for (std::size_t k = 0; b + k < pass_end; k += N) {
      hn::Vec<decltype(du)> w0, w1, w2, w3;
      hn::LoadInterleaved4(du, words + 4 * (b + k), w0, w1, w2, w3);
      const auto first = hn::Add(four_iota, hn::Set(du, static_cast<std::uint32_t>(4 * k)));
      const auto e0 = trunc_normal_central(du, w0, first, p, tails);
      const auto e1 = trunc_normal_central(du, w1, hn::Add(first, hn::Set(du, 1u)), p, tails);
      const auto e2 = trunc_normal_central(du, w2, hn::Add(first, hn::Set(du, 2u)), p, tails);
      const auto e3 = trunc_normal_central(du, w3, hn::Add(first, hn::Set(du, 3u)), p, tails);
      hn::StoreInterleaved4(e0, e1, e2, e3, df, pass_out + 4 * k);
    }
    for (std::size_t t = 0; t < tails.count; t += N) {
      const std::size_t lanes = std::min(N, tails.count - t);
      for (std::size_t i = lanes; i < N; ++i) {  // pad the last vector with a harmless probability
        tail_probability[t + i] = 0.25f;
        tail_position[t + i] = 0;
      }
      const auto flagged = hn::Load(du, tail_position + t);
      hn::Store(trunc_normal_tail(du, hn::Load(df, tail_probability + t), flagged, p), df, tail_value);
      hn::Store(hn::AndNot(hn::Set(du, TailLanes::kLowFlag), flagged), du, tail_at);
      for (std::size_t i = 0; i < lanes; ++i) pass_out[tail_at[i]] = tail_value[i];
    }
    b = pass_end;
  }
#endif
  for (std::size_t e = 4 * b; e < 4 * blocks; ++e) out[e] = p(words[e]);  // the scalar reference
}

// Runs `lanes(du, bits)` (f32 bit patterns -> 16-bit patterns in 32-bit lanes) over whole vectors of
// `in`, and the scalar reference `one` over the rest.
template <class Lanes, class One>
HWY_INLINE void halves_from_f32(const float* HWY_RESTRICT in, std::size_t n, std::uint16_t* HWY_RESTRICT out,
                                const Lanes& lanes, const One& one) {
  std::size_t i = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<uint32_t> du;
  const hn::Rebind<float, decltype(du)> df;
  const hn::Rebind<uint16_t, decltype(du)> d16;
  const std::size_t N = hn::Lanes(du);
  for (; i + N <= n; i += N) {
    hn::StoreU(narrow_to_16(du, lanes(du, hn::BitCast(du, hn::LoadU(df, in + i)))), d16, out + i);
  }
#else
  (void)lanes;
#endif
  for (; i < n; ++i) out[i] = one(in[i]);
}

// bf16 patterns of any f32 bit patterns, NaN quieted, as detail::bf16_from_f32 (in 32-bit lanes).
template <class DU>
HWY_INLINE hn::Vec<DU> bf16_patterns(DU du, hn::Vec<DU> bits) {
  const auto is_nan = hn::Gt(hn::And(bits, hn::Set(du, 0x7FFFFFFFu)), hn::Set(du, 0x7F800000u));
  const auto quiet_nan = hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x0040u));
  return hn::IfThenElse(is_nan, quiet_nan, bf16_rounded(du, bits));
}

void Bf16FromF32(const float* HWY_RESTRICT in, std::size_t n, std::uint16_t* HWY_RESTRICT out) {
  halves_from_f32(
      in, n, out, [](auto du, auto bits) { return bf16_patterns(du, bits); },
      [](float v) { return shardinit::detail::bf16_from_f32(v); });
}

// f16 bit patterns, as detail::f16_from_f32 computes them, branch by branch selected per lane.
void F16FromF32(const float* HWY_RESTRICT in, std::size_t n, std::uint16_t* HWY_RESTRICT out) {
  halves_from_f32(
      in, n, out,
      [](auto du, auto bits) {
        const hn::RebindToSigned<decltype(du)> di;
        const auto sign = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000u));
        const auto magnitude = hn::And(bits, hn::Set(du, 0x7FFFFFFFu));
        // Normal results: rebias the exponent and round the 13 dropped bits to nearest even.
        const auto rebased = hn::Sub(magnitude, hn::Set(du, 0x38000000u));
        const auto normal = hn::ShiftRight<13>(
            hn::Add(rebased, hn::Add(hn::Set(du, 0x0FFFu), hn::And(hn::ShiftRight<13>(rebased), hn::Set(du, 1u)))));
        // Subnormal results: the whole significand shifted right by 126 - exponent (14..24 where it
        // applies; clamped to that range elsewhere to keep the shifts defined), rounded to nearest
        // even the same way: adding half - 1 and the kept lowest bit carries exactly when the scalar
        // code rounds up.
        const auto exponent = hn::ShiftRight<23>(magnitude);
        const auto shift = hn::Min(hn::Max(hn::Sub(hn::Set(du, 126u), hn::Min(exponent, hn::Set(du, 126u))),
                                           hn::Set(du, 14u)), hn::Set(du, 24u));
        const auto significand = hn::Or(hn::And(magnitude, hn::Set(du, 0x007FFFFFu)), hn::Set(du, 0x00800000u));
        const auto half_minus_one = hn::Sub(hn::Shl(hn::Set(du, 1u), hn::Sub(shift, hn::Set(du, 1u))), hn::Set(du, 1u));
        const auto kept_lowest = hn::And(hn::Shr(significand, shift), hn::Set(du, 1u));
        const auto subnormal = hn::Shr(hn::Add(significand, hn::Add(half_minus_one, kept_lowest)), shift);
        // The magnitude is below 2^31: compared as a signed integer (x86 lacks unsigned comparisons).
        const auto at_least = [&](std::int32_t threshold) {
          return hn::RebindMask(du, hn::Gt(hn::BitCast(di, magnitude), hn::Set(di, threshold - 1)));
        };
        auto result = hn::IfThenElseZero(at_least(0x33000000), subnormal);
        result = hn::IfThenElse(at_least(0x38800000), normal, result);
        result = hn::IfThenElse(at_least(0x477FF000), hn::Set(du, 0x7C00u), result);
        result = hn::IfThenElse(at_least(0x7F800001), hn::Set(du, 0x7E00u), result);
        return hn::Or(sign, result);
      },
      [](float v) { return shardinit::detail::f16_from_f32(v); });
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

// Philox, Box-Muller and the bf16 rounding of whole blocks in registers: no words or f32 values in
// memory between the steps (the unfused path writes and reads each once per element). A NaN needs
// an infinite mean or std (mean + std (r c) with both finite is finite or an overflow to infinity,
// r c being finite): only then is the conversion the NaN-quieting one.
void NormalBf16Blocks(const NormalF32& p, Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block,
                      std::size_t blocks, std::uint16_t* HWY_RESTRICT out) {
  std::size_t b = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<uint32_t> du;
  const hn::Rebind<float, decltype(du)> df;
  const std::size_t N = hn::Lanes(du);
  const RoundKeys keys(key);
  const auto run = [&](const auto& bf16_of) {
    for (; b + N <= blocks; b += N) {
      hn::Vec<decltype(du)> c0, c1, c2, c3;
      philox_blocks(du, first_block + b, stream, keys, c0, c1, c2, c3);
      hn::Vec<decltype(df)> e0, e1, e2, e3;
      normal_pairs(du, c0, c1, p, e0, e1);
      normal_pairs(du, c2, c3, p, e2, e3);
      store_16bit_blocks(du, bf16_of(e0), bf16_of(e1), bf16_of(e2), bf16_of(e3), out + 4 * b);
    }
  };
  if (std::isfinite(p.mean) && std::isfinite(p.std)) {
    run([df](hn::Vec<decltype(df)> v) { return bf16_lanes_not_nan(df, v); });
  } else {
    run([du](hn::Vec<decltype(df)> v) { return bf16_patterns(du, hn::BitCast(du, v)); });
  }
#endif
  for (; b < blocks; ++b) {  // fewer than a vector of blocks left (or the scalar target): the reference
    const auto w = block_words(key, stream, first_block + b);
    for (int pair = 0; pair < 2; ++pair) {
      const auto [even, odd] = p(w[2 * pair], w[2 * pair + 1]);
      out[4 * b + 2 * pair] = shardinit::detail::bf16_from_f32(even);
      out[4 * b + 2 * pair + 1] = shardinit::detail::bf16_from_f32(odd);
    }
  }
}

}  // namespace shardinit::simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace shardinit::simd {

HWY_EXPORT(PhiloxWords);
HWY_EXPORT(UniformF32Blocks);
HWY_EXPORT(UniformBf16Blocks);
HWY_EXPORT(UniformF64Blocks);
HWY_EXPORT(NormalF32FromWords);
HWY_EXPORT(NormalBf16Blocks);
HWY_EXPORT(TruncNormalF32FromWords);
HWY_EXPORT(Bf16FromF32);
HWY_EXPORT(F16FromF32);

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

void uniform_bf16(const detail::UniformTransform<float>& params, Philox4x32::key_type key, std::uint64_t stream,
                  std::uint64_t first_block, std::size_t blocks, std::uint16_t* out) {
  HWY_DYNAMIC_DISPATCH(UniformBf16Blocks)(params, key, stream, first_block, blocks, out);
}

void uniform_f64(const detail::UniformTransform<double>& params, Philox4x32::key_type key, std::uint64_t stream,
                 std::uint64_t first_block, std::size_t blocks, double* out) {
  HWY_DYNAMIC_DISPATCH(UniformF64Blocks)(params, key, stream, first_block, blocks, out);
}

void normal_f32_from_words(const detail::NormalTransform<float>& params, const std::uint32_t* words,
                           std::size_t blocks, float* out) {
  HWY_DYNAMIC_DISPATCH(NormalF32FromWords)(params, words, blocks, out);
}

void normal_bf16(const detail::NormalTransform<float>& params, Philox4x32::key_type key, std::uint64_t stream,
                 std::uint64_t first_block, std::size_t blocks, std::uint16_t* out) {
  HWY_DYNAMIC_DISPATCH(NormalBf16Blocks)(params, key, stream, first_block, blocks, out);
}

void trunc_normal_f32_from_words(const detail::TruncNormalTransform<float>& params, const std::uint32_t* words,
                                 std::size_t blocks, float* out) {
  HWY_DYNAMIC_DISPATCH(TruncNormalF32FromWords)(params, words, blocks, out);
}

void bf16_from_f32(const float* in, std::size_t n, std::uint16_t* out) { HWY_DYNAMIC_DISPATCH(Bf16FromF32)(in, n, out); }

void f16_from_f32(const float* in, std::size_t n, std::uint16_t* out) { HWY_DYNAMIC_DISPATCH(F16FromF32)(in, n, out); }

}  // namespace shardinit::simd
#endif
