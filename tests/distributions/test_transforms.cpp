// The scalar pieces of stream format v1: binary32 -> bf16/f16 rounding against a reference written
// here in double arithmetic, uniform numbers from bits, the range guarantees of the uniform and
// truncated-normal transforms at extreme words, and validate()'s error cases.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "distributions/half_precision.hpp"
#include "distributions/transforms.hpp"
#include "distributions/uniform_bits.hpp"
#include "shardinit/distributions/distribution.hpp"
#include "shardinit/error.hpp"

namespace {

using shardinit::Constant;
using shardinit::DType;
using shardinit::Normal;
using shardinit::TruncNormal;
using shardinit::Uniform;
using testing::HasSubstr;
namespace detail = shardinit::detail;

// ---- binary32 -> bf16 / f16 ----------------------------------------------------------------------------

// Reference rounding of a finite binary32 value to a binary format with `p` significand bits,
// minimum normal exponent `emin`, and largest finite value `max_finite`, round-to-nearest-even, in
// double arithmetic (every intermediate below is exact). Returns the bit pattern (sign included).
std::uint16_t reference_round(float value, int p, int emin, double max_finite, int exponent_bits) {
  const std::uint16_t sign = std::signbit(value) ? static_cast<std::uint16_t>(0x8000u) : 0;
  const std::uint16_t inf = static_cast<std::uint16_t>(((1u << exponent_bits) - 1) << (p - 1));
  const double a = std::fabs(static_cast<double>(value));
  if (a == 0) return sign;
  int e = std::ilogb(a);          // 2^e <= a < 2^(e+1)
  if (e < emin) e = emin;         // subnormal range: fixed quantum
  const double quantum = std::ldexp(1.0, e - (p - 1));
  const double q = a / quantum;   // exact (power-of-two scaling, no underflow in double)
  double n = std::floor(q);
  const double frac = q - n;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(n, 2.0) == 1.0)) n += 1;
  if (n * quantum > max_finite) return static_cast<std::uint16_t>(sign | inf);
  // Biased exponent field e - emin + 1 with the implicit bit of n carried into it (0 for subnormals).
  const auto field = static_cast<std::uint32_t>(e - emin) << (p - 1);
  return static_cast<std::uint16_t>(sign | (field + static_cast<std::uint32_t>(n)));
}

std::uint16_t reference_bf16(float v) { return reference_round(v, 8, -126, 3.3895313892515355e38, 8); }
std::uint16_t reference_f16(float v) { return reference_round(v, 11, -14, 65504.0, 5); }

bool is_nan16(std::uint16_t h, int p) {
  const std::uint16_t exponent_mask = static_cast<std::uint16_t>(0x7FFFu & ~((1u << (p - 1)) - 1));
  return (h & exponent_mask) == exponent_mask && (h & ((1u << (p - 1)) - 1)) != 0;
}

// Checks one binary32 bit pattern against the references; returns false (and records) on mismatch.
void check_half(std::uint32_t bits, int& mismatches, long& checked) {
  const float v = std::bit_cast<float>(bits);
  const std::uint16_t bf = detail::bf16_from_f32(v);
  const std::uint16_t h = detail::f16_from_f32(v);
  ++checked;
  if (std::isnan(v)) {
    // NaN stays NaN, keeps its sign and is quiet (top significand bit set).
    const bool ok_bf = is_nan16(bf, 8) && (bf & 0x8000u) == ((bits >> 16) & 0x8000u) && (bf & 0x0040u);
    const bool ok_h = is_nan16(h, 11) && (h & 0x8000u) == ((bits >> 16) & 0x8000u) && (h & 0x0200u);
    if ((!ok_bf || !ok_h) && ++mismatches <= 10) {
      ADD_FAILURE() << std::hex << "NaN 0x" << bits << " -> bf16 0x" << bf << ", f16 0x" << h;
    }
    return;
  }
  const std::uint16_t want_bf = std::isinf(v) ? static_cast<std::uint16_t>((bits >> 16)) : reference_bf16(v);
  const std::uint16_t want_h =
      std::isinf(v) ? static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | 0x7C00u) : reference_f16(v);
  if (bf != want_bf && ++mismatches <= 10) {
    ADD_FAILURE() << std::hex << "bf16 of 0x" << bits << " (" << v << "): got 0x" << bf << ", want 0x" << want_bf;
  }
  if (h != want_h && ++mismatches <= 10) {
    ADD_FAILURE() << std::hex << "f16 of 0x" << bits << " (" << v << "): got 0x" << h << ", want 0x" << want_h;
  }
}

TEST(HalfPrecision, ReferenceRoundingSpotChecks) {
  // The reference itself, on values whose encodings are well known.
  EXPECT_EQ(reference_f16(1.0f), 0x3C00);
  EXPECT_EQ(reference_f16(-2.0f), 0xC000);
  EXPECT_EQ(reference_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(reference_f16(65519.99f), 0x7BFF);
  EXPECT_EQ(reference_f16(65520.0f), 0x7C00);          // the tie above the largest finite rounds to infinity
  EXPECT_EQ(reference_f16(0x1p-24f), 0x0001);          // smallest subnormal
  EXPECT_EQ(reference_f16(0x1p-25f), 0x0000);          // tie with zero: even
  EXPECT_EQ(reference_f16(0x1.8p-24f), 0x0002);        // 1.5 quanta: tie, rounds to even 2
  EXPECT_EQ(reference_f16(0x1.ffcp-15f), 0x0400);      // rounds up into the normal range
  EXPECT_EQ(reference_bf16(1.0f), 0x3F80);
  EXPECT_EQ(reference_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie to even
  EXPECT_EQ(reference_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie to even (up)
  EXPECT_EQ(reference_bf16(std::numeric_limits<float>::max()), 0x7F80);  // overflows to infinity
  EXPECT_EQ(reference_bf16(std::bit_cast<float>(0x00000001u)), 0x0000);  // tiny subnormal
  EXPECT_EQ(reference_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie to even
}

TEST(HalfPrecision, AllUpperHalvesTimesSelectedLowHalves) {
  // Every upper 16-bit pattern (sign, exponent, top significand bits; NaN and infinity included) with
  // low halves that hit the bf16 tie (0x8000) and its neighbours and, through bits 15..13, the f16 ties
  // (0x1000 below bit 13) and their neighbours.
  std::vector<std::uint32_t> lows{0x0000u, 0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu};
  for (std::uint32_t top = 0; top < 8; ++top) {
    for (std::uint32_t below : {0x0000u, 0x0001u, 0x0FFFu, 0x1000u, 0x1001u, 0x1FFFu}) lows.push_back(top << 13 | below);
  }
  std::mt19937 gen(5);
  for (int i = 0; i < 4; ++i) lows.push_back(gen() & 0xFFFFu);
  int mismatches = 0;
  long checked = 0;
  for (std::uint32_t upper = 0; upper <= 0xFFFFu; ++upper) {
    for (std::uint32_t low : lows) check_half(upper << 16 | low, mismatches, checked);
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(checked, 65536L * static_cast<long>(lows.size()));
}

TEST(HalfPrecision, EveryF16MidpointAndItsNeighbours) {
  // The exact midpoint between consecutive f16 values (a binary32 number), one float below and above;
  // this covers the subnormal ties at every shift and the overflow threshold 65520.
  int mismatches = 0;
  long checked = 0;
  const auto f16_value = [](std::uint32_t h) {
    const std::uint32_t e = h >> 10, m = h & 0x3FFu;
    return e == 0 ? std::ldexp(static_cast<double>(m), -24) : std::ldexp(static_cast<double>(m | 0x400u), static_cast<int>(e) - 25);
  };
  for (std::uint32_t h = 0; h < 0x7C00u; ++h) {
    const double next = h == 0x7BFFu ? 65536.0 : f16_value(h + 1);
    const auto mid = static_cast<float>((f16_value(h) + next) / 2);
    ASSERT_EQ(static_cast<double>(mid), (f16_value(h) + next) / 2);
    for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      check_half(std::bit_cast<std::uint32_t>(v), mismatches, checked);
      check_half(std::bit_cast<std::uint32_t>(-v), mismatches, checked);
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(detail::f16_from_f32(65520.0f), 0x7C00);
  EXPECT_EQ(detail::f16_from_f32(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(detail::f16_from_f32(-0.0f), 0x8000);
  EXPECT_EQ(detail::bf16_from_f32(-0.0f), 0x8000);
  EXPECT_EQ(detail::f16_from_f32(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(detail::bf16_from_f32(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(detail::f16_from_f32(std::numeric_limits<float>::max()), 0x7C00);
  EXPECT_EQ(detail::bf16_from_f32(std::numeric_limits<float>::max()), 0x7F80);  // rounds up to infinity
  EXPECT_TRUE(is_nan16(detail::f16_from_f32(std::numeric_limits<float>::quiet_NaN()), 11));
  EXPECT_TRUE(is_nan16(detail::bf16_from_f32(std::bit_cast<float>(0x7F800001u)), 8));  // signalling NaN, low payload
}

// ---- uniform numbers from bits -------------------------------------------------------------------------

TEST(UniformBits, OpenUniform32ExtremesAndNeverZero) {
  EXPECT_EQ(detail::open_uniform32(0), 0x1p-33f);
  EXPECT_EQ(detail::open_uniform32(1), 0x1.8p-32f);
  EXPECT_EQ(detail::open_uniform32(0xFFFFFFFFu), 1.0f);  // 1 - 2^-33 rounds to 1
  EXPECT_EQ(detail::open_uniform32(0xFFFFFF00u), 1.0f - 0x1p-24f);
  // Monotone and never zero: every 2^32 input (a strided walk plus the lowest 2^20).
  float previous = 0.0f;
  long zeros = 0, decreases = 0;
  for (std::uint64_t k = 0; k <= 0xFFFFFFFFull; k += (k < (1u << 20) ? 1 : 4093)) {
    const float u = detail::open_uniform32(static_cast<std::uint32_t>(k));
    if (!(u > 0.0f)) ++zeros;
    if (u < previous) ++decreases;
    if (u > 1.0f) ++zeros;
    previous = u;
  }
  EXPECT_EQ(zeros, 0);
  EXPECT_EQ(decreases, 0);
}

TEST(UniformBits, OpenUniform32ComplementSymmetry) {
  std::mt19937_64 gen(3);
  std::vector<std::uint32_t> ks{0u, 1u, 2u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFEu, 0xFFFFFFFFu, 0xFFu, 0x100u};
  for (int n = 0; n < 1'000'000; ++n) ks.push_back(static_cast<std::uint32_t>(gen()));
  double worst = 0;
  for (auto k : ks) {
    const double sum = static_cast<double>(detail::open_uniform32(k)) + static_cast<double>(detail::open_uniform32(~k));
    worst = std::max(worst, std::fabs(sum - 1.0));
  }
  EXPECT_LE(worst, 0x1p-24);
  // Each value is the single rounding of (k + 1/2) 2^-32.
  for (auto k : {0u, 3u, 0x12345678u, 0xFFFFFFFFu}) {
    EXPECT_EQ(detail::open_uniform32(k), static_cast<float>((static_cast<long double>(k) + 0.5L) * 0x1p-32L));
    EXPECT_EQ(detail::open_uniform32_as_double(k), (static_cast<double>(k) + 0.5) * 0x1p-32);
  }
}

TEST(UniformBits, OpenUniform64AndUnitUniform) {
  EXPECT_EQ(detail::open_uniform64(0), 0x1p-65);
  EXPECT_EQ(detail::open_uniform64(~std::uint64_t{0}), 1.0);
  EXPECT_EQ(detail::unit_uniform(std::uint32_t{0}), 0.0);
  EXPECT_EQ(detail::unit_uniform(std::uint32_t{0xFFFFFFFFu}), 1.0 - 0x1p-24);
  EXPECT_EQ(detail::unit_uniform(std::uint64_t{0}), 0.0);
  EXPECT_EQ(detail::unit_uniform(~std::uint64_t{0}), 1.0 - 0x1p-53);
  std::mt19937_64 gen(4);
  for (int n = 0; n < 200'000; ++n) {
    const std::uint64_t K = gen();
    const double u = detail::open_uniform64(K);
    ASSERT_GT(u, 0.0);
    ASSERT_LE(u, 1.0);
    // One rounding of (K + 1/2) 2^-64: long double holds it exactly (64-bit significand + 1 bit is
    // not exact, so compare within half an ulp of the double instead).
    const long double exact = (static_cast<long double>(K) + 0.5L) * 0x1p-64L;
    ASSERT_LE(std::fabs(static_cast<long double>(u) - exact), std::ldexp(1.0L, std::ilogb(exact) - 53)) << K;
    ASSERT_LE(std::fabs(u + detail::open_uniform64(~K) - 1.0), 0x1p-53);
  }
}

// ---- uniform(a, b) never reaches b ------------------------------------------------------------------

const std::uint32_t kExtremeWords32[] = {0u, 1u, 0xFFu, 0x100u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFEFFu, 0xFFFFFF00u,
                                         0xFFFFFFFEu, 0xFFFFFFFFu};
const std::uint64_t kExtremeWords64[] = {0ull, 1ull, 0x7FFull, 0x800ull, 0x7FFFFFFFFFFFFFFFull, 0x8000000000000000ull,
                                         0xFFFFFFFFFFFFF7FFull, 0xFFFFFFFFFFFFF800ull, ~1ull, ~0ull};

std::vector<Uniform> adversarial_uniforms() {
  const double f1 = 1.0;
  std::vector<Uniform> list{
      {0.0, 1.0},
      {-1.0, 1.0},
      {0.0, std::numeric_limits<double>::denorm_min()},
      {0.0, std::numeric_limits<float>::denorm_min()},
      {0.0, 2.0 * std::numeric_limits<float>::denorm_min()},
      {f1, std::nextafter(f1, 2.0)},                 // one double wide
      {f1, 1.0 + 0x1p-24},                           // narrower than a float ulp, contains float 1
      {f1, 1.0 + 0x1p-23},                           // exactly one float wide
      {1.0 - 0x1p-25, 1.0 + 0x1p-30},                // b just above a float
      {-1.0 - 0x1p-22, -1.0},                        // b exactly a float
      {-3.4e38, 3.4e38},                             // near the float range
      {-1e300, 1e300},                               // f64 only
      {1e30, 1e30 * (1 + 1e-7)},
      {-0.5, 0.5},
      {0.1, 0.3},
      {-1e-40, 1e-40},                               // float subnormals
      {123456789.0, 123456789.0 + 8.0},              // float ulp is 8 there: one float
      {123456789.0, 123456789.0 + 20.0},
  };
  std::mt19937_64 gen(8);
  std::uniform_real_distribution<double> mag(-30, 30);
  for (int n = 0; n < 300; ++n) {
    const double a = (gen() % 2 ? 1 : -1) * std::pow(10.0, mag(gen));
    const double width = std::fabs(a) * std::pow(10.0, -static_cast<double>(gen() % 18));
    list.push_back({a, a + width});
  }
  return list;
}

template <class Real, class Bits>
void check_uniform_range(const Bits (&extreme)[10], std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  int checked = 0, degenerate = 0;
  for (const Uniform& u : adversarial_uniforms()) {
    if (!(u.a < u.b)) continue;
    if (std::is_same_v<Real, float> && std::fabs(u.b) > 3.4e38) continue;
    const detail::UniformTransform<Real> t(u);
    std::vector<Bits> words(std::begin(extreme), std::end(extreme));
    for (int n = 0; n < 200; ++n) words.push_back(static_cast<Bits>(gen()));
    if (t.degenerate) {
      // No Real lies in [a, b): the documented fallback is R(a) for every element.
      ++degenerate;
      for (Bits w : words) EXPECT_EQ(t(w), static_cast<Real>(u.a));
      continue;
    }
    for (Bits w : words) {
      const Real v = t(w);
      ASSERT_TRUE(static_cast<double>(v) >= u.a && static_cast<double>(v) < u.b)
          << "uniform(" << u.a << ", " << u.b << ") word " << std::hex << +w << " gave " << std::hexfloat << v;
      ++checked;
    }
  }
  EXPECT_GT(checked, 20'000);
  testing::Test::RecordProperty("degenerate", degenerate);
}

TEST(UniformTransform, FloatNeverReachesB) { check_uniform_range<float>(kExtremeWords32, 1); }
TEST(UniformTransform, DoubleNeverReachesB) { check_uniform_range<double>(kExtremeWords64, 2); }

TEST(UniformTransform, TopWordWouldRoundOntoB) {
  // a + (b - a) * (1 - 2^-24) rounds to b in binary32 here; the clamp must move it below b.
  const detail::UniformTransform<float> t(Uniform{1.0, 2.0});
  EXPECT_EQ(t(0xFFFFFFFFu), std::nextafter(2.0f, 0.0f));
  EXPECT_EQ(t(0u), 1.0f);
  const detail::UniformTransform<double> td(Uniform{1.0, 1.0 + 0x1p-52 * 3});
  EXPECT_LT(td(~std::uint64_t{0}), 1.0 + 0x1p-52 * 3);
}

// ---- trunc_normal stays in [a, b] ------------------------------------------------------------------

std::vector<TruncNormal> trunc_cases() {
  std::vector<TruncNormal> list{
      {0, 1, -2, 2},        {0, 0.02, -2, 2},     {0, 1, -0.001, 0.001}, {0, 1, 9, 10},   {0, 1, -10, -9},
      {0, 1, 7.9, 8.1},     {0, 1, 8, 1e30},      {0, 1, -1e30, -8},     {0, 1, 37, 38},  {0, 1, 40, 40.0001},
      {0, 1, 1e3, 1e3 + 1}, {0, 1, 1e10, 2e10},   {5, 1e-300, -1, 10},   {0, 1e-300, -2e-300, 2e-300},
      {1, 1e-300, 0, 2},    {0, 1e-300, 9e-300, 1e-299},              {0, 1, -1e-300, 1e-300},
      {100, 3, 0, 1},       {-100, 3, -1, 0},     {0, 1, 2, 3},          {0, 1, -3, -2},  {0.5, 2, 0.4, 0.6},
      {0, 1e10, -1, 1},     {1e6, 1, 1e6 + 8.5, 1e6 + 9},                {0, 1, 5.5, 6},  {0, 1, -6, -5.5},
  };
  std::mt19937_64 gen(9);
  std::uniform_real_distribution<double> loc(-50, 50);
  for (int n = 0; n < 200; ++n) {
    const double mean = loc(gen), std = std::pow(10.0, loc(gen) / 10);
    double a = mean + std * loc(gen), b = mean + std * loc(gen);
    if (a > b) std::swap(a, b);
    if (a == b) continue;
    list.push_back({mean, std, a, b});
  }
  return list;
}

template <class Real, class Bits>
void check_trunc_range(std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  const std::vector<Bits> extreme{0, 1, static_cast<Bits>(std::numeric_limits<Bits>::max() >> 1),
                                  static_cast<Bits>((std::numeric_limits<Bits>::max() >> 1) + 1),
                                  static_cast<Bits>(std::numeric_limits<Bits>::max() - 1),
                                  std::numeric_limits<Bits>::max()};
  int checked = 0;
  for (const TruncNormal& t : trunc_cases()) {
    if (std::is_same_v<Real, float> && (std::fabs(t.a) > 3.4e38 || std::fabs(t.b) > 3.4e38)) continue;
    const detail::TruncNormalTransform<Real> transform(t);
    std::vector<Bits> words = extreme;
    for (int n = 0; n < 100; ++n) words.push_back(static_cast<Bits>(gen()));
    for (Bits w : words) {
      const Real v = transform(w);
      if (transform.degenerate) {
        EXPECT_EQ(v, static_cast<Real>(t.a));  // no Real in [a, b]: R(a) by definition
        continue;
      }
      ASSERT_TRUE(static_cast<double>(v) >= t.a && static_cast<double>(v) <= t.b)
          << "trunc_normal(" << t.mean << ", " << t.std << ", " << t.a << ", " << t.b << ") word " << std::hex << +w
          << " gave " << std::hexfloat << v;
      ++checked;
    }
  }
  EXPECT_GT(checked, 200 * 100);
}

TEST(TruncNormalTransform, FloatValuesStayInsideAB) { check_trunc_range<float, std::uint32_t>(10); }
TEST(TruncNormalTransform, DoubleValuesStayInsideAB) { check_trunc_range<double, std::uint64_t>(11); }

TEST(TruncNormalTransform, FarTailValuesAreInTheirTail) {
  // a = 9, b = 10: values strictly inside, monotone in the word (inverse-CDF sampling), not all at a.
  const detail::TruncNormalTransform<double> t(TruncNormal{0, 1, 9, 10});
  EXPECT_EQ(t.method, detail::TruncNormalTransform<double>::Method::far_upper);
  double previous = 9.0;
  for (std::uint64_t k = 0; k < 64; ++k) {
    const double v = t(k << 58);
    EXPECT_GE(v, previous) << k;
    previous = v;
  }
  EXPECT_GT(previous, 9.0);
  EXPECT_LT(t(std::uint64_t{1} << 63), 9.2);  // the median of the tail is near a: Q decays fast
  const detail::TruncNormalTransform<float> lower(TruncNormal{0, 1, -10, -9});
  EXPECT_EQ(lower.method, detail::TruncNormalTransform<float>::Method::far_lower);
  EXPECT_LE(lower(0x80000000u), -9.0f);
  EXPECT_GT(lower(0x80000000u), -9.2f);
}

TEST(TruncNormalTransform, ValuesAreMonotoneInTheWord) {
  // Inverse-CDF sampling: a larger word gives a larger (or equal) value for the central, narrow and
  // far-upper methods, and a smaller one for far-lower (the mirror image of far-upper), up to the
  // rounding of the binary32 central method (PPND7 is accurate to ~1e-7 relative, not monotone per ulp).
  int checked = 0;
  for (const TruncNormal& t : trunc_cases()) {
    const detail::TruncNormalTransform<float> f(t);
    const detail::TruncNormalTransform<double> d(t);
    const bool float_ok = std::fabs(t.a) <= 3.4e38 && std::fabs(t.b) <= 3.4e38;
    const double sign_f = f.method == detail::TruncNormalTransform<float>::Method::far_lower ? -1 : 1;
    const double sign_d = d.method == detail::TruncNormalTransform<double>::Method::far_lower ? -1 : 1;
    const double scale = std::max({std::fabs(t.a), std::fabs(t.b), std::fabs(t.mean) + 10 * t.std});
    double previous_f = -std::numeric_limits<double>::infinity();
    double previous_d = -std::numeric_limits<double>::infinity();
    for (std::uint64_t k = 0; k <= 4096; ++k) {
      const auto w32 = static_cast<std::uint32_t>(std::min<std::uint64_t>(k << 20, 0xFFFFFFFFull));
      const std::uint64_t w64 = k == 4096 ? ~0ull : k << 52;
      const double vf = sign_f * static_cast<double>(f(w32));
      const double vd = sign_d * d(w64);
      if (float_ok) {
        ASSERT_GE(vf, previous_f - 1e-6 * scale)
            << "float trunc_normal(" << t.mean << ", " << t.std << ", " << t.a << ", " << t.b << ") word " << w32;
      }
      ASSERT_GE(vd, previous_d - 1e-14 * scale)
          << "double trunc_normal(" << t.mean << ", " << t.std << ", " << t.a << ", " << t.b << ") word " << w64;
      previous_f = vf;
      previous_d = vd;
      ++checked;
    }
  }
  EXPECT_GT(checked, 200 * 4096);
}

TEST(TruncNormalTransform, NarrowIntervalsInAWideNormalAreNearlyUniform) {
  // std far larger than the interval: the truncated normal is (almost exactly) uniform on [a, b], so
  // the word at quantile u gives about a + u (b - a); it must not collapse onto the mean or a bound.
  for (const double std : {1e3, 1e10, 1e30}) {
    const TruncNormal t{0.0, std, -1.0, 1.0};
    const detail::TruncNormalTransform<float> f(t);
    const detail::TruncNormalTransform<double> d(t);
    EXPECT_EQ(f.method, detail::TruncNormalTransform<float>::Method::narrow) << std;
    EXPECT_EQ(d.method, detail::TruncNormalTransform<double>::Method::narrow) << std;
    for (const double u : {0.125, 0.25, 0.5, 0.75, 0.875}) {
      const auto w32 = static_cast<std::uint32_t>(u * 0x1p32);
      const auto w64 = static_cast<std::uint64_t>(u * 0x1p64);
      // The density varies by a factor exp(1 / (2 std^2)) over [-1, 1]: quantiles move by ~1/std^2.
      EXPECT_NEAR(f(w32), -1.0 + 2 * u, 1e-5 + 1 / (std * std)) << "std " << std << " u " << u;
      EXPECT_NEAR(d(w64), -1.0 + 2 * u, 1e-12 + 1 / (std * std)) << "std " << std << " u " << u;
    }
  }
  const detail::TruncNormalTransform<double> huge(TruncNormal{0.0, 1e300, -1.0, 1.0});
  EXPECT_NEAR(huge(std::uint64_t{1} << 62), -0.5, 1e-12);
}

// I(y) = integral over [0, y] of exp(-alpha s - s^2 / 2) ds by composite Simpson in long double.
long double simpson_integral(long double alpha, long double y) {
  constexpr int n = 4000;  // even
  const long double h = y / n;
  long double sum = 0;
  for (int i = 0; i <= n; ++i) {
    const long double s = h * i;
    const long double f = std::exp(-(alpha * s + s * s / 2));
    sum += f * (i == 0 || i == n ? 1 : i % 2 == 1 ? 4 : 2);
  }
  return sum * h / 3;
}

TEST(TruncNormalTransform, NarrowIntegralSeriesIsAccurate) {
  std::mt19937_64 gen(12);
  std::uniform_real_distribution<double> alpha_dist(-7.9, 7.9);
  std::uniform_real_distribution<double> fraction(0.0, 1.0);
  double worst = 0;
  int checked = 0;
  for (int n = 0; n < 3000; ++n) {
    const double alpha = n < 100 ? 0.0 : alpha_dist(gen);
    // The narrow domain: |alpha| y + y^2 / 2 <= 1/16.
    const double y_max = -std::fabs(alpha) + std::sqrt(alpha * alpha + 0.125);
    const double y = y_max * std::pow(fraction(gen), 4.0);
    if (y <= 0) continue;
    const long double want = simpson_integral(alpha, y);
    const double got = detail::narrow_integral(alpha, y);
    worst = std::max(worst, static_cast<double>(std::fabs((got - want) / want)));
    ++checked;
  }
  EXPECT_LE(worst, 2e-15);  // measured 6.2e-16
  EXPECT_GT(checked, 2900);
  EXPECT_EQ(detail::narrow_integral(1.0, 0.0), 0.0);
}

// ---- normal: the extremes validate() assumes ----------------------------------------------------------

TEST(NormalTransform, LargestValuesStayWithinValidatesBound) {
  // validate() allows normal(mean, std) when |mean| + k * std is finite, k = 6.8 for the binary32 path
  // and 9.5 for binary64; the largest radius comes from the smallest open uniform (word 0).
  const detail::NormalTransform<float> f(Normal{0, 1});
  const detail::NormalTransform<double> d(Normal{0, 1});
  float max_f = 0;
  double max_d = 0;
  for (std::uint32_t angle : {0u, 0x40000000u, 0x80000000u, 0xC0000000u, 0x20000000u, 0xFFFFFFFFu, 0x12345678u}) {
    for (std::uint32_t radius : {0u, 1u, 2u, 0xFFFFFFFFu}) {
      const auto [c, s] = f(radius, angle);
      max_f = std::max({max_f, std::fabs(c), std::fabs(s)});
    }
  }
  for (std::uint64_t angle : {0ull, 1ull << 62, 1ull << 63, 3ull << 62, ~0ull}) {
    for (std::uint64_t radius : {0ull, 1ull, ~0ull}) {
      const auto [c, s] = d(radius, angle);
      max_d = std::max({max_d, std::fabs(c), std::fabs(s)});
    }
  }
  EXPECT_GT(max_f, 6.7f);
  EXPECT_LE(max_f, 6.8f);
  EXPECT_GT(max_d, 9.4);
  EXPECT_LE(max_d, 9.5);
  // So the widest normal that validate() accepts for f16 still gives finite f16 values.
  const double std_limit = 9632.0;  // 6.8 * 9632 = 65497.6 <= 65504
  ASSERT_NO_THROW(shardinit::validate(Normal{0, std_limit}, DType::f16));
  const detail::NormalTransform<float> wide(Normal{0, std_limit});
  for (std::uint32_t angle : {0u, 0x40000000u, 0x80000000u, 0xC0000000u}) {
    const auto [c, s] = wide(0u, angle);
    EXPECT_NE(detail::f16_from_f32(c) & 0x7C00u, 0x7C00u) << c;
    EXPECT_NE(detail::f16_from_f32(s) & 0x7C00u, 0x7C00u) << s;
  }
}

// ---- validate() -------------------------------------------------------------------------------------------

std::string shortest(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

void expect_rejected(const shardinit::Distribution& d, DType dtype, const std::vector<std::string>& must_contain) {
  SCOPED_TRACE(shardinit::describe(d) + " as " + std::string(shardinit::dtype_name(dtype)));
  try {
    shardinit::validate(d, dtype);
    ADD_FAILURE() << "validate accepted it";
  } catch (const shardinit::Error& e) {
    EXPECT_EQ(e.kind(), shardinit::ErrorKind::invalid_argument);
    for (const auto& s : must_contain) EXPECT_THAT(e.what(), HasSubstr(s));
  }
}

TEST(DistributionValidate, RejectsBadParametersNamingTheValue) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // negative std
  expect_rejected(Normal{0, -0.5}, DType::f32, {"std", shortest(-0.5)});
  expect_rejected(TruncNormal{0, -1, -2, 2}, DType::f64, {"std", shortest(-1)});
  // a > b, a >= b
  expect_rejected(Uniform{2, 1}, DType::f32, {"a=2", "b=1"});
  expect_rejected(TruncNormal{0, 1, 2, -2}, DType::f32, {"a=2", "b=-2"});
  expect_rejected(TruncNormal{0, 1, 0.5, 0.5}, DType::f64, {"a=0.5", "b=0.5"});
  expect_rejected(TruncNormal{0, 0, -2, 2}, DType::f32, {"std=0"});
  // non-finite parameters, each named
  expect_rejected(Constant{nan}, DType::f32, {"value", "nan"});
  expect_rejected(Uniform{-inf, 0}, DType::f64, {"a", "-inf"});
  expect_rejected(Uniform{0, inf}, DType::f64, {"b", "inf"});
  expect_rejected(Normal{nan, 1}, DType::f32, {"mean", "nan"});
  expect_rejected(Normal{0, inf}, DType::f64, {"std", "inf"});
  expect_rejected(TruncNormal{0, 1, -2, nan}, DType::f32, {"b", "nan"});
  expect_rejected(TruncNormal{0, 1, -inf, 2}, DType::f32, {"a", "-inf"});
  expect_rejected(TruncNormal{inf, 1, -2, 2}, DType::f32, {"mean", "inf"});
  expect_rejected(TruncNormal{0, nan, -2, 2}, DType::f32, {"std", "nan"});
  // ranges of the dtype
  expect_rejected(Uniform{0, 1e5}, DType::f16, {"b=" + shortest(1e5), "f16"});
  expect_rejected(Constant{70000}, DType::f16, {shortest(70000), "f16"});
  expect_rejected(Constant{1e39}, DType::f32, {shortest(1e39), "f32"});
  expect_rejected(Constant{1e39}, DType::bf16, {shortest(1e39), "bf16"});
  expect_rejected(Normal{0, 1e4}, DType::f16, {"std=" + shortest(1e4), "f16"});  // 6.8 sigma > 65504
  expect_rejected(Normal{65000, 100}, DType::f16, {"mean=" + shortest(65000), "f16"});
  expect_rejected(TruncNormal{0, 1, -1e5, 1e5}, DType::f16, {shortest(-1e5), "f16"});
  expect_rejected(Uniform{-1.7e308, 1.7e308}, DType::f64, {"overflows"});
}

TEST(DistributionValidate, AcceptsBoundaryCases) {
  EXPECT_NO_THROW(shardinit::validate(Uniform{0, 65504}, DType::f16));
  EXPECT_NO_THROW(shardinit::validate(Uniform{1, 1}, DType::f32));
  EXPECT_NO_THROW(shardinit::validate(Normal{0, 0}, DType::f16));
  EXPECT_NO_THROW(shardinit::validate(Normal{0, 9000}, DType::f16));  // 6.8 * 9000 = 61200 <= 65504
  EXPECT_NO_THROW(shardinit::validate(Normal{0, 1e300}, DType::f64));
  EXPECT_NO_THROW(shardinit::validate(TruncNormal{0, 1e-300, -1, 1}, DType::f32));
  EXPECT_NO_THROW(shardinit::validate(Constant{-65504}, DType::f16));
}

}  // namespace

namespace shardinit {
namespace {

// Decoding is exact: every bf16 and f16 pattern but NaN comes back unchanged through the encoder,
// and the decoded values are the ones the formats define (checked against ldexp for f16).
TEST(HalfPrecision, DecodingRoundTripsEveryPattern) {
  int checked = 0;
  for (std::uint32_t bits = 0; bits <= 0xFFFFu; ++bits) {
    const auto h = static_cast<std::uint16_t>(bits);
    const float b = detail::f32_from_bf16(h), f = detail::f32_from_f16(h);
    if (!std::isnan(b)) {
      EXPECT_EQ(detail::bf16_from_f32(b), h) << std::hex << bits;
    }
    if (std::isnan(f)) {
      EXPECT_EQ(bits & 0x7C00u, 0x7C00u) << std::hex << bits;
      continue;
    }
    ASSERT_EQ(detail::f16_from_f32(f), h) << std::hex << bits;
    const int exponent = static_cast<int>((bits >> 10) & 0x1F), mantissa = static_cast<int>(bits & 0x3FF);
    const double magnitude = exponent == 0x1F ? INFINITY
                             : exponent == 0  ? std::ldexp(mantissa, -24)
                                              : std::ldexp(1024 + mantissa, exponent - 25);
    ASSERT_EQ(static_cast<double>(f), (bits & 0x8000u) ? -magnitude : magnitude) << std::hex << bits;
    ++checked;
  }
  EXPECT_EQ(checked, 65536 - 2 * 1023);  // all but the NaNs
}

}  // namespace
}  // namespace shardinit
