// Accuracy of the deterministic elementary functions (src/math/deterministic_math.hpp) against
// long double libm and Boost.Math, and golden bit patterns that pin stream format v1.

#include <gtest/gtest.h>

#include <boost/math/constants/constants.hpp>
#include <boost/math/special_functions/erf.hpp>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "math/deterministic_math.hpp"

namespace {

namespace math = shardinit::math;
using ld = long double;

static_assert(std::numeric_limits<long double>::digits >= 64,
              "the references need x87 extended precision (64-bit significand)");

// Error of `got` in units of the last place of the *target* format at the exact value `ref`
// (ulp of a subnormal result is the smallest subnormal).
template <class Real>
ld ulp_error(Real got, ld ref) {
  constexpr int digits = std::numeric_limits<Real>::digits;            // 24 or 53
  constexpr int min_exp = std::numeric_limits<Real>::min_exponent - 1;  // -126 or -1022
  if (ref == 0) return got == 0 ? 0 : std::numeric_limits<ld>::infinity();
  int e = std::ilogb(ref);
  e = std::max(e, min_exp);
  const ld ulp = std::ldexp(ld{1}, e - (digits - 1));
  return std::fabs(static_cast<ld>(got) - ref) / ulp;
}

ld relative_error(ld got, ld ref) { return ref == 0 ? std::fabs(got) : std::fabs(got - ref) / std::fabs(ref); }

// Tracks the worst error and where it happened; fails the test at the end if it exceeds the bound.
struct Worst {
  ld error = 0;
  ld at = 0;
  long count = 0;
  void add(ld err, ld x) {
    ++count;
    if (!(err <= error)) {  // NaN errors are recorded as worst
      error = err;
      at = x;
    }
  }
  std::string where() const {
    std::ostringstream s;
    s.precision(21);
    s << "worst error " << static_cast<double>(error) << " at x = " << at << " (" << std::hexfloat
      << static_cast<double>(at) << ") over " << std::dec << count << " inputs";
    return s.str();
  }
};

template <class Float>
Float random_positive_finite(std::mt19937_64& gen) {
  if constexpr (sizeof(Float) == 4) {
    std::uniform_int_distribution<std::uint32_t> bits(1, 0x7F7FFFFFu);
    return std::bit_cast<float>(bits(gen));
  } else {
    std::uniform_int_distribution<std::uint64_t> bits(1, 0x7FEFFFFFFFFFFFFFull);
    return std::bit_cast<double>(bits(gen));
  }
}

// ---- log -------------------------------------------------------------------------------------------

TEST(DeterministicLog, FloatWithinTwoUlpOnNormalInputs) {
  std::mt19937_64 gen(11);
  Worst worst;
  for (int n = 0; n < 2'000'000; ++n) {
    float x = random_positive_finite<float>(gen);
    if (x < std::numeric_limits<float>::min()) x = std::ldexp(x, 40);
    worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  }
  // Dense around 1, where log is smallest and cancellation is hardest.
  for (float x = 0.5f; x < 2.0f; x += 1e-6f * x) worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  for (float x = 0.999f; x < 1.001f; x = std::nextafter(x, 2.0f)) {  // every float
    worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  }
  worst.add(ulp_error(math::log(std::numeric_limits<float>::max()), std::log(static_cast<ld>(FLT_MAX))), FLT_MAX);
  EXPECT_LE(worst.error, 2.0L) << worst.where();
  EXPECT_GT(worst.count, 2'000'000);
  EXPECT_EQ(math::log(1.0f), 0.0f);
}

TEST(DeterministicLog, FloatWithinTwoUlpOnSubnormalInputs) {
  std::mt19937_64 gen(12);
  std::uniform_int_distribution<std::uint32_t> bits(1, 0x007FFFFFu);
  Worst worst;
  for (int n = 0; n < 1'000'000; ++n) {
    const float x = std::bit_cast<float>(bits(gen));
    ASSERT_LT(x, std::numeric_limits<float>::min());
    worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  }
  for (std::uint32_t b : {1u, 2u, 3u, 0x00400000u, 0x007FFFFFu}) {
    const float x = std::bit_cast<float>(b);
    worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  }
  EXPECT_LE(worst.error, 2.0L) << worst.where();
}

TEST(DeterministicLog, DoubleWithinTwoUlp) {
  std::mt19937_64 gen(13);
  Worst worst;
  for (int n = 0; n < 1'000'000; ++n) {
    const double x = random_positive_finite<double>(gen);
    worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  }
  std::uniform_int_distribution<std::uint64_t> subnormal(1, 0x000FFFFFFFFFFFFFull);
  for (int n = 0; n < 300'000; ++n) {
    const double x = std::bit_cast<double>(subnormal(gen));
    worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  }
  std::uniform_real_distribution<double> near_one(0.7, 1.42);
  for (int n = 0; n < 500'000; ++n) {
    const double x = near_one(gen);
    worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  }
  for (int k = 1; k < 2000; ++k) {  // 1 +- k ulp
    for (double x : {1.0 + k * 0x1p-52, 1.0 - k * 0x1p-53}) worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  }
  for (double x : {std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::min(), DBL_MAX}) {
    worst.add(ulp_error(math::log(x), std::log(static_cast<ld>(x))), x);
  }
  EXPECT_LE(worst.error, 2.0L) << worst.where();
  EXPECT_EQ(math::log(1.0), 0.0);
}

// ---- exp -------------------------------------------------------------------------------------------

TEST(DeterministicExp, DoubleWithinTwoUlpOnFullRange) {
  std::mt19937_64 gen(21);
  std::uniform_real_distribution<double> wide(-745.0, 709.0);
  std::uniform_real_distribution<double> small(-1.0, 1.0);
  std::uniform_real_distribution<double> subnormal_results(-745.0, -708.0);
  Worst worst;
  for (int n = 0; n < 1'000'000; ++n) {
    const double x = wide(gen);
    worst.add(ulp_error(math::exp(x), std::exp(static_cast<ld>(x))), x);
  }
  for (int n = 0; n < 300'000; ++n) {
    const double x = small(gen) * std::ldexp(1.0, -static_cast<int>(gen() % 60));
    worst.add(ulp_error(math::exp(x), std::exp(static_cast<ld>(x))), x);
  }
  for (int n = 0; n < 300'000; ++n) {
    const double x = subnormal_results(gen);
    worst.add(ulp_error(math::exp(x), std::exp(static_cast<ld>(x))), x);
  }
  for (double x : {-745.0, -744.44007192138122, -708.39641853226408, -708.0, -0.5 * std::log(2.0), 0.0, 1e-300,
                   0.5 * std::log(2.0), 1.0, 709.0}) {
    worst.add(ulp_error(math::exp(x), std::exp(static_cast<ld>(x))), x);
  }
  EXPECT_LE(worst.error, 2.0L) << worst.where();
  EXPECT_EQ(math::exp(0.0), 1.0);
  EXPECT_EQ(math::exp(-746.0), 0.0);
  EXPECT_EQ(math::exp(710.0), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(math::exp(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_GT(math::exp(-745.0), 0.0);  // the smallest subnormal, not zero
}

// ---- sin/cos on [0, pi/4] ----------------------------------------------------------------------------

template <class Real>
void check_octant(std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  const Real quarter_pi = static_cast<Real>(0.785398163397448309616L);
  std::uniform_real_distribution<Real> angle(Real(0), quarter_pi);
  Worst sin_worst, cos_worst;
  std::vector<Real> xs;
  for (int n = 0; n < 500'000; ++n) xs.push_back(angle(gen));
  for (int n = 0; n <= 4096; ++n) xs.push_back(quarter_pi * static_cast<Real>(n) / Real(4096));
  for (int e = 1; e < 40; ++e) xs.push_back(std::ldexp(Real(1), -e));
  xs.push_back(quarter_pi);
  for (Real x : xs) {
    if (x > quarter_pi) continue;
    sin_worst.add(ulp_error(math::sin_octant(x), std::sin(static_cast<ld>(x))), x);
    cos_worst.add(ulp_error(math::cos_octant(x), std::cos(static_cast<ld>(x))), x);
  }
  EXPECT_LE(sin_worst.error, 2.0L) << "sin_octant " << sin_worst.where();
  EXPECT_LE(cos_worst.error, 2.0L) << "cos_octant " << cos_worst.where();
  EXPECT_EQ(math::sin_octant(Real(0)), Real(0));
  EXPECT_EQ(math::cos_octant(Real(0)), Real(1));
}

TEST(DeterministicOctant, FloatWithinTwoUlp) { check_octant<float>(31); }
TEST(DeterministicOctant, DoubleWithinTwoUlp) { check_octant<double>(32); }

// ---- normal quantile -----------------------------------------------------------------------------------

// Phi^-1(p) in long double from Boost.Math's erfc_inv, using the small tail (1 - p is exact for a
// binary32/binary64 p >= 1/2).
ld reference_quantile(ld p) {
  const ld root_two = boost::math::constants::root_two<ld>();
  if (p <= 0.5L) return -root_two * boost::math::erfc_inv(2 * p);
  return root_two * boost::math::erfc_inv(2 * (1 - p));
}

TEST(DeterministicQuantile, ReferenceIsSane) {
  EXPECT_NEAR(static_cast<double>(reference_quantile(0.975L)), 1.9599639845400539, 1e-15);
  EXPECT_NEAR(static_cast<double>(reference_quantile(1e-300L)), -37.047096299361199, 1e-13);  // mpmath, 50 digits
}

TEST(DeterministicQuantile, FloatRelativeErrorBelow1e6) {
  std::mt19937_64 gen(41);
  std::uniform_real_distribution<double> log10p(-37.0, std::log10(0.5));
  std::vector<float> ps;
  for (int n = 0; n < 300'000; ++n) {
    const auto p = static_cast<float>(std::pow(10.0, log10p(gen)));
    if (p >= 1e-37f && p < 1.0f) ps.push_back(p);
    const float upper = 1.0f - p;  // rounded: still a valid p in (0, 1)
    if (upper < 1.0f) ps.push_back(upper);
  }
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (int n = 0; n < 300'000; ++n) {
    const float p = unit(gen);
    if (p >= 1e-37f && p < 1.0f) ps.push_back(p);
  }
  for (float p : {1e-37f, 0.075f, 0.0749999f, 0.925f, 0.925001f, 0.49999997f, 0.50000006f, 0.99999994f}) ps.push_back(p);
  for (int k = 1; k <= 64; ++k) ps.push_back(1.0f - static_cast<float>(k) * 0x1p-24f);  // closest to 1
  Worst worst;
  for (float p : ps) {
    if (p == 0.5f) continue;  // quantile 0: checked exactly below
    worst.add(relative_error(math::normal_quantile(p), reference_quantile(p)), p);
  }
  EXPECT_LE(worst.error, 1e-6L) << worst.where();
  EXPECT_EQ(math::normal_quantile(0.5f), 0.0f);
}

TEST(DeterministicQuantile, DoubleRelativeErrorBelow1e14) {
  std::mt19937_64 gen(42);
  std::uniform_real_distribution<double> log10p(-300.0, std::log10(0.5));
  std::uniform_real_distribution<double> log10q(-16.0 + std::log10(1.2), std::log10(0.5));  // 1 - p >= 1.2e-16
  std::vector<double> ps;
  for (int n = 0; n < 300'000; ++n) ps.push_back(std::pow(10.0, log10p(gen)));
  for (int n = 0; n < 300'000; ++n) ps.push_back(1.0 - std::pow(10.0, log10q(gen)));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int n = 0; n < 300'000; ++n) ps.push_back(unit(gen));
  for (double p : {1e-300, 2.2250738585072014e-308 * 1e8, 0.075, 0.925, std::nextafter(0.075, 0.0),
                   std::nextafter(0.925, 1.0), std::nextafter(0.5, 0.0), std::nextafter(0.5, 1.0), 1.0 - 1e-16,
                   1.0 - 0x1p-53, 1.0 - 0x1p-52}) {
    ps.push_back(p);
  }
  Worst worst;
  for (double p : ps) {
    if (p <= 0.0 || p >= 1.0 || p == 0.5) continue;
    worst.add(relative_error(math::normal_quantile(p), reference_quantile(p)), p);
  }
  EXPECT_LE(worst.error, 1e-14L) << worst.where();
  EXPECT_GT(worst.count, 800'000);
  EXPECT_EQ(math::normal_quantile(0.5), 0.0);
}

TEST(DeterministicQuantile, AntisymmetricAroundOneHalf) {
  // Phi^-1(1 - p) = -Phi^-1(p) exactly whenever 1 - p is exact: p a multiple of the ulp of [1/2, 1).
  std::mt19937_64 gen(43);
  int checked = 0;
  for (int n = 0; n < 100'000; ++n) {
    const double p = static_cast<double>(gen() % (1ull << 52) + 1) * 0x1p-53;
    ASSERT_EQ(1.0 - (1.0 - p), p);
    ASSERT_EQ(math::normal_quantile(1.0 - p), -math::normal_quantile(p)) << p;
    const float pf = static_cast<float>(gen() % (1u << 23) + 1) * 0x1p-24f;
    ASSERT_EQ(1.0f - (1.0f - pf), pf);
    ASSERT_EQ(math::normal_quantile(1.0f - pf), -math::normal_quantile(pf)) << pf;
    ++checked;
  }
  EXPECT_EQ(checked, 100'000);
}

// ---- normal tail, density, Mills ratio ------------------------------------------------------------------

ld reference_upper_tail(ld x) { return boost::math::erfc(x / boost::math::constants::root_two<ld>()) / 2; }
ld reference_density(ld x) { return std::exp(-(x * x) / 2) / std::sqrt(2 * boost::math::constants::pi<ld>()); }

// R(x) = Q(x) / phi(x). For x <= 20, the quotient of the long double references; above, the
// asymptotic series 1/x * sum (-1)^k (2k-1)!! / x^(2k), summed until its terms are negligible
// (the smallest term is about exp(-x^2/2), far below long double precision for x >= 20).
ld reference_mills(ld x) {
  if (x <= 20) return reference_upper_tail(x) / reference_density(x);
  ld sum = 0, term = 1;
  for (int k = 1; std::fabs(term) > 1e-30L * std::fabs(sum + 1); ++k) {
    sum += term;
    term *= -static_cast<ld>(2 * k - 1) / (x * x);
  }
  return sum / x;
}

TEST(DeterministicNormalTail, ReferencesAgreeWhereTheyOverlap) {
  for (ld x : {20.0L, 22.5L, 25.0L, 30.0L}) {
    ld sum = 0, term = 1;
    for (int k = 1; std::fabs(term) > 1e-30L; ++k) {
      sum += term;
      term *= -static_cast<ld>(2 * k - 1) / (x * x);
    }
    EXPECT_LT(relative_error(sum / x, reference_upper_tail(x) / reference_density(x)), 1e-16L) << static_cast<double>(x);
  }
}

TEST(DeterministicNormalTail, UpperTailRelativeErrorBelow1e14) {
  std::mt19937_64 gen(51);
  std::uniform_real_distribution<double> x_dist(0.0, 37.0);
  std::vector<double> xs;
  for (int n = 0; n < 200'000; ++n) xs.push_back(x_dist(gen));
  for (int n = 0; n <= 37 * 256; ++n) xs.push_back(n / 256.0);
  for (double x : {std::nextafter(1.0, 0.0), 1.0, std::nextafter(2.0, 0.0), 2.0, std::nextafter(4.0, 0.0), 4.0,
                   std::nextafter(8.0, 0.0), 8.0, 1e-300, 37.0}) {
    xs.push_back(x);
  }
  Worst worst;
  for (double x : xs) worst.add(relative_error(math::normal_upper_tail(x), reference_upper_tail(x)), x);
  EXPECT_LE(worst.error, 1e-14L) << worst.where();
  EXPECT_EQ(math::normal_upper_tail(0.0), 0.5);
  EXPECT_EQ(math::normal_upper_tail(std::numeric_limits<double>::infinity()), 0.0);
  EXPECT_EQ(math::normal_cdf_lower(-3.0), math::normal_upper_tail(3.0));
}

TEST(DeterministicNormalTail, MillsRatioDepth20AtOrAbove8) {
  std::mt19937_64 gen(52);
  std::uniform_real_distribution<double> mid(8.0, 40.0);
  std::uniform_real_distribution<double> log_far(std::log(40.0), std::log(1e8));
  std::vector<double> xs{8.0, std::nextafter(8.0, 9.0), 10.0, 20.0, 37.0, 40.0, 1e3, 1e8};
  for (int n = 0; n < 100'000; ++n) xs.push_back(mid(gen));
  for (int n = 0; n < 20'000; ++n) xs.push_back(std::exp(log_far(gen)));
  Worst worst;
  for (double x : xs) worst.add(relative_error(math::mills_ratio(x, 20), reference_mills(x)), x);
  EXPECT_LE(worst.error, 1e-15L) << worst.where();
  EXPECT_EQ(math::mills_depth(8.0), 20);
}

TEST(DeterministicNormalTail, MillsRatioAtItsChosenDepthIsFullPrecision) {
  // mills_depth(x) is claimed to reach binary64 accuracy wherever the library uses it (x >= 1).
  std::mt19937_64 gen(53);
  std::uniform_real_distribution<double> x_dist(1.0, 40.0);
  Worst worst;
  for (int n = 0; n < 20'000; ++n) {
    const double x = x_dist(gen);
    worst.add(relative_error(math::mills_ratio(x, math::mills_depth(x)), reference_mills(x)), x);
  }
  for (double x : {1.0, std::nextafter(2.0, 0.0), 2.0, std::nextafter(4.0, 0.0), 4.0, std::nextafter(8.0, 0.0)}) {
    worst.add(relative_error(math::mills_ratio(x, math::mills_depth(x)), reference_mills(x)), x);
  }
  EXPECT_LE(worst.error, 1e-15L) << worst.where();
}

TEST(DeterministicNormalTail, DensityRelativeErrorBelow1e15) {
  std::mt19937_64 gen(54);
  std::uniform_real_distribution<double> x_dist(-37.0, 37.0);
  std::vector<double> xs{0.0, 1.0, -1.0, 8.0, 37.0, -37.0, 1e-300};
  for (int n = 0; n < 300'000; ++n) xs.push_back(x_dist(gen));
  Worst worst;
  for (double x : xs) worst.add(relative_error(math::normal_density(x), reference_density(x)), x);
  EXPECT_LE(worst.error, 1e-15L) << worst.where();
  EXPECT_EQ(math::normal_density(3.5), math::normal_density(-3.5));
}

// ---- golden bit patterns -----------------------------------------------------------------------------
//
// These pin stream format v1 (docs/stream-format.md, section 8): the exact output bits of the
// deterministic functions, computed once with the implementation at the time the format was fixed
// and hard-coded here. Every generated value depends on them, so a failure here means every checkpoint
// shardinit writes would change. Such a change must be deliberate: bump the stream-format version and
// regenerate these tables, never "fix" them to match a new implementation silently.

struct Golden32 { std::uint32_t in, out; };
struct Golden64 { std::uint64_t in, out; };

constexpr Golden32 kLogFloat[] = {
    {0x00000001u, 0xc2ce8ed0u},  // 2^-149 (smallest subnormal)
    {0x00800000u, 0xc2aeac50u},  // 2^-126
    {0x0da24260u, 0xc28a27b5u},  // 1e-30
    {0x3a83126fu, 0xc0dd0c55u},  // 0.001
    {0x3f000000u, 0xbf317218u},  // 0.5
    {0x3f3504f3u, 0xbeb17218u},  // sqrt(1/2)
    {0x3f800000u, 0x00000000u},  // 1
    {0x3f800001u, 0x33ffffffu},  // 1 + 2^-23
    {0x40000000u, 0x3f317218u},  // 2
    {0x40490fdbu, 0x3f928682u},  // pi
    {0x501502f9u, 0x41b834f1u},  // 1e10
    {0x7f7fffffu, 0x42b17218u},  // FLT_MAX
};
constexpr Golden64 kLogDouble[] = {
    {0x0000000000000001ull, 0xc0874385446d71c3ull},  // 2^-1074
    {0x0010000000000000ull, 0xc086232bdd7abcd2ull},  // 2^-1022
    {0x01a56e1fc2f8f359ull, 0xc085963447f87fb5ull},  // 1e-300
    {0x3ddb7cdfd9d7bdbbull, 0xc037069e2aa2aa5bull},  // 1e-10
    {0x3fe0000000000000ull, 0xbfe62e42fefa39efull},  // 0.5
    {0x3fe6a09e667f3bcdull, 0xbfd62e42fefa39eeull},  // sqrt(1/2)
    {0x3ff0000000000000ull, 0x0000000000000000ull},  // 1
    {0x3ff0000000000001ull, 0x3cafffffffffffffull},  // 1 + 2^-52
    {0x4000000000000000ull, 0x3fe62e42fefa39efull},  // 2
    {0x400921fb54442d18ull, 0x3ff250d048e7a1bdull},  // pi
    {0x54b249ad2594c37dull, 0x406cc845b54b54f2ull},  // 1e100
    {0x7fefffffffffffffull, 0x40862e42fefa39efull},  // DBL_MAX
};
constexpr Golden64 kExp[] = {
    {0xc087480000000000ull, 0x0000000000000001ull},  // -745 -> smallest subnormal
    {0xc086240000000000ull, 0x000e6cf6d08897acull},  // -708.5 (subnormal result)
    {0xc085e00000000000ull, 0x00d14f2b0fb9307full},  // -700
    {0xbff0000000000000ull, 0x3fd78b56362cef38ull},  // -1
    {0x81a56e1fc2f8f359ull, 0x3ff0000000000000ull},  // -1e-300
    {0x0000000000000000ull, 0x3ff0000000000000ull},  // 0
    {0x3ddb7cdfd9d7bdbbull, 0x3ff000000006df38ull},  // 1e-10
    {0x3fe0000000000000ull, 0x3ffa61298e1e069cull},  // 0.5
    {0x3ff0000000000000ull, 0x4005bf0a8b14576aull},  // 1
    {0x40026bb1bbb55516ull, 0x4024000000000001ull},  // ln 10
    {0x4059000000000000ull, 0x48f3494a9b171bf5ull},  // 100
    {0x4086280000000000ull, 0x7fdd422d2be5dc9bull},  // 709
};
constexpr Golden32 kQuantileFloat[] = {
    {0x02081ceau, 0xc14c8d8cu},  // 1e-37
    {0x1e3ce508u, 0xc114328cu},  // 1e-20
    {0x2edbe6ffu, 0xc0cb901au},  // 1e-10
    {0x3727c5acu, 0xc08879fdu},  // 1e-5
    {0x3c23d70au, 0xc014e2e3u},  // 0.01
    {0x3d99999au, 0xbfb84291u},  // 0.075
    {0x3e99999au, 0xbf063f1du},  // 0.3
    {0x3f000000u, 0x00000000u},  // 0.5
    {0x3f333333u, 0x3f063f1du},  // 0.7
    {0x3f733333u, 0x3fd28a8du},  // 0.95
    {0x3f7fff58u, 0x40887781u},  // 0.99999
    {0x3f7fffffu, 0x40a96e38u},  // 1 - 2^-24
};
constexpr Golden64 kQuantileDouble[] = {
    {0x01a56e1fc2f8f359ull, 0xc04286074064c26eull},  // 1e-300
    {0x2b2bff2ee48e0530ull, 0xc03546010d75521full},  // 1e-100
    {0x3bc79ca10c924223ull, 0xc022865170b43a4bull},  // 1e-20
    {0x3e45798ee2308c3aull, 0xc01672b074435e3eull},  // 1e-8
    {0x3f847ae147ae147bull, 0xc0029c5c4630ff0eull},  // 0.01
    {0x3fb3333333333333ull, 0xbff7085226d3e523ull},  // 0.075
    {0x3fd3333333333333ull, 0xbfe0c7e39582c5faull},  // 0.3
    {0x3fe0000000000000ull, 0x0000000000000000ull},  // 0.5
    {0x3fe6666666666666ull, 0x3fe0c7e39582c5faull},  // 0.7
    {0x3fee666666666666ull, 0x3ffa515209676ab8ull},  // 0.95
    {0x3feffffde7210be9ull, 0x40130381a97985f1ull},  // 0.999999
    {0x3fefffffffffffffull, 0x40206b48528cea51ull},  // 1 - 2^-53
};

// Also pinned: the binary64 tail probability (per-tensor constants of trunc_normal) and the octant
// polynomials (every Box-Muller angle).
constexpr Golden64 kUpperTail[] = {
    {0x0000000000000000ull, 0x3fe0000000000000ull},  // 0
    {0x3fd0000000000000ull, 0x3fd9aecba9d22528ull},  // 0.25
    {0x3feff7ced916872bull, 0x3fc456bf8b79af8cull},  // 0.999 (series)
    {0x3ff0000000000000ull, 0x3fc44ed0bb7cb20bull},  // 1 (Mills ratio, depth 1000)
    {0x3ff8000000000000ull, 0x3fb11a46d89647f0ull},  // 1.5
    {0x4004000000000000ull, 0x3f796f4e57e49ce5ull},  // 2.5 (depth 200)
    {0x400ffdf3b645a1cbull, 0x3f00acd729b83f83ull},  // 3.999
    {0x4014000000000000ull, 0x3e933ca2f2133832ull},  // 5 (depth 50)
    {0x401ff5c28f5c28f6ull, 0x3cc84ef39ea4724bull},  // 7.99
    {0x4020000000000000ull, 0x3cc669d2c90d55cfull},  // 8 (depth 20)
    {0x4034000000000000ull, 0x2d8c0bd0f1880784ull},  // 20
    {0x4042800000000000ull, 0x01ceaccc6bfeb0adull},  // 37
};
struct GoldenSinCos32 { std::uint32_t in, sin, cos; };
struct GoldenSinCos64 { std::uint64_t in, sin, cos; };
constexpr GoldenSinCos32 kSinCosFloat[] = {
    {0x358637bdu, 0x358637bdu, 0x3f800000u},  // 1e-6
    {0x3dcccccdu, 0x3dcc7577u, 0x3f7eb898u},  // 0.1
    {0x3e99999au, 0x3e974e6du, 0x3f7490eeu},  // 0.3
    {0x3f000000u, 0x3ef57744u, 0x3f60a940u},  // 0.5
    {0x3f333333u, 0x3f24eb73u, 0x3f43ccb2u},  // 0.7
    {0x3f490fdbu, 0x3f3504f3u, 0x3f3504f2u},  // RN32(pi/4)
};
constexpr GoldenSinCos64 kSinCosDouble[] = {
    {0x3eb0c6f7a0b5ed8dull, 0x3eb0c6f7a0b5ea7aull, 0x3fefffffffffee68ull},  // 1e-6
    {0x3fb999999999999aull, 0x3fb98eaecb8bcb2cull, 0x3fefd712f9a817c0ull},  // 0.1
    {0x3fd3333333333333ull, 0x3fd2e9cd95baba33ull, 0x3fee921dd42f09baull},  // 0.3
    {0x3fe0000000000000ull, 0x3fdeaee8744b05f0ull, 0x3fec1528065b7d50ull},  // 0.5
    {0x3fe6666666666666ull, 0x3fe49d6e694619b8ull, 0x3fe87996529f9d92ull},  // 0.7
    {0x3fe921fb54442d18ull, 0x3fe6a09e667f3bccull, 0x3fe6a09e667f3bcdull},  // RN64(pi/4)
};

template <class Table, class Fn>
void check_golden(const Table& table, Fn fn, const char* name) {
  int checked = 0;
  for (const auto& g : table) {
    const auto got = fn(g.in);
    EXPECT_EQ(got, g.out) << name << " of input bits 0x" << std::hex << g.in << ": got 0x" << got << ", pinned 0x"
                          << g.out;
    ++checked;
  }
  EXPECT_GE(checked, 10) << name;
}

TEST(StreamFormatV1Golden, LogFloat) {
  check_golden(kLogFloat, [](std::uint32_t in) { return std::bit_cast<std::uint32_t>(math::log(std::bit_cast<float>(in))); },
               "log(float)");
}
TEST(StreamFormatV1Golden, LogDouble) {
  check_golden(kLogDouble, [](std::uint64_t in) { return std::bit_cast<std::uint64_t>(math::log(std::bit_cast<double>(in))); },
               "log(double)");
}
TEST(StreamFormatV1Golden, Exp) {
  check_golden(kExp, [](std::uint64_t in) { return std::bit_cast<std::uint64_t>(math::exp(std::bit_cast<double>(in))); },
               "exp");
}
TEST(StreamFormatV1Golden, NormalQuantileFloat) {
  check_golden(kQuantileFloat,
               [](std::uint32_t in) { return std::bit_cast<std::uint32_t>(math::normal_quantile(std::bit_cast<float>(in))); },
               "normal_quantile(float)");
}
TEST(StreamFormatV1Golden, NormalQuantileDouble) {
  check_golden(kQuantileDouble,
               [](std::uint64_t in) { return std::bit_cast<std::uint64_t>(math::normal_quantile(std::bit_cast<double>(in))); },
               "normal_quantile(double)");
}

TEST(StreamFormatV1Golden, NormalUpperTail) {
  check_golden(kUpperTail,
               [](std::uint64_t in) { return std::bit_cast<std::uint64_t>(math::normal_upper_tail(std::bit_cast<double>(in))); },
               "normal_upper_tail");
}
TEST(StreamFormatV1Golden, OctantPolynomials) {
  for (const auto& g : kSinCosFloat) {
    const float x = std::bit_cast<float>(g.in);
    EXPECT_EQ(std::bit_cast<std::uint32_t>(math::sin_octant(x)), g.sin) << std::hexfloat << x;
    EXPECT_EQ(std::bit_cast<std::uint32_t>(math::cos_octant(x)), g.cos) << std::hexfloat << x;
  }
  for (const auto& g : kSinCosDouble) {
    const double x = std::bit_cast<double>(g.in);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(math::sin_octant(x)), g.sin) << std::hexfloat << x;
    EXPECT_EQ(std::bit_cast<std::uint64_t>(math::cos_octant(x)), g.cos) << std::hexfloat << x;
  }
}

}  // namespace
