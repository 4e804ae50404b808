// Highway's foreach_target compiles this file once per instruction set.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/kernels.cpp"
#include <hwy/foreach_target.h>  // must come before highway.h

#include <hwy/highway.h>

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

// The scalar reference's uniform transform of one word.
HWY_INLINE float uniform_one(std::uint32_t word, const UniformF32& p) {
  const double u = static_cast<double>(word >> 8) * 0x1p-24;
  const float v = static_cast<float>(p.a + p.width * u);
  const float low = v >= p.lo ? v : p.lo;
  return low > p.hi ? p.hi : low;
}

// The uniform transform of one vector of words (one element per lane).
template <class D32>
HWY_INLINE hn::Vec<hn::Rebind<float, D32>> uniform_lanes(D32 d, hn::Vec<D32> words, const UniformF32& p) {
  const hn::Rebind<float, D32> df;
#if HWY_TARGET == HWY_SCALAR
  (void)d;
  return hn::Set(df, uniform_one(hn::GetLane(words), p));  // one lane: no halves to split into
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
  auto v = hn::Combine(df, convert(hn::UpperHalf(dh, bits)), convert(hn::LowerHalf(dh, bits)));
  // clamp_to(v, lo, hi) exactly as the scalar code: compare and select (Min/Max differ on signed zeros).
  const auto lo = hn::Set(df, p.lo);
  const auto hi = hn::Set(df, p.hi);
  v = hn::IfThenElse(hn::Ge(v, lo), v, lo);
  return hn::IfThenElse(hn::Gt(v, hi), hi, v);
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
  if (b < blocks) {  // fewer than a vector of blocks left: the scalar reference's own arithmetic
    alignas(64) std::uint32_t words[4 * hn::MaxLanes(d)];
    PhiloxWords(key, stream, first_block + b, blocks - b, words);
    for (std::size_t e = 0; e < 4 * (blocks - b); ++e) out[4 * b + e] = uniform_one(words[e], p);
  }
}

}  // namespace shardinit::simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace shardinit::simd {

HWY_EXPORT(PhiloxWords);
HWY_EXPORT(UniformF32Blocks);

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

void uniform_f32(const UniformF32& params, Philox4x32::key_type key, std::uint64_t stream, std::uint64_t first_block,
                 std::size_t blocks, float* out) {
  HWY_DYNAMIC_DISPATCH(UniformF32Blocks)(params, key, stream, first_block, blocks, out);
}

}  // namespace shardinit::simd
#endif
