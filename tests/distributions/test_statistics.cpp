// Statistical tests of the built-in distributions and of the Colossal-AI initializers, through the
// public fill API: each test generates N = 2^20 elements of a 1-D tensor with a FIXED (seed, stream)
// and compares them with the exact distribution. The tests are deterministic (fixed seeds); the
// thresholds are derived from the sampling distribution of each statistic, at a false-alarm level of
// about 1e-6 per check, and are never tuned to the observed values.
//
// Conventions (derivations):
//  * Kolmogorov-Smirnov: D = sup_x |F_N(x) - G(x)|, where G is the CDF of the exact distribution
//    rounded to the output type (see ks_distance). By the Dvoretzky-Kiefer-Wolfowitz inequality with
//    Massart's constant, P(D > eps) <= 2 exp(-2 N eps^2) for a continuous null, and the test is only
//    more conservative for a discrete null (Noether 1963); solving 2 exp(-2 N eps^2) = p gives
//    D_crit = sqrt(-ln(p/2) / (2N)), used with p = 1e-6 (D_crit = 0.002632 for N = 2^20).
//  * Mean: the sample mean has standard deviation sigma/sqrt(N) (CLT); |mean - mu| <= 5 sigma/sqrt(N)
//    fails with probability 5.7e-7.
//  * Variance: Var(s^2) = sigma^4 (kurtosis - (N-3)/(N-1)) / N ~ sigma^4 (kurtosis - 1) / N, so
//    |s^2 - sigma^2| <= 5 sigma^2 sqrt((kurtosis - 1)/N) is again a 5-sigma bound. Kurtosis: 3 for the
//    normal, 1.8 for the uniform, computed by numerical integration for each truncated normal.
//  * Frequencies: a count of n Bernoulli(p) trials has standard deviation sqrt(n p (1-p)); the bound
//    is 5 of those (the tests only use bins with n p (1-p) >= 25, where the normal approximation holds).
//  * Correlation: for independent samples sqrt(N) r -> N(0, 1), so |r| <= 5/sqrt(N).
//
// The exact CDFs are computed in long double with Boost.Math's erfc; truncated-normal CDFs are written
// in upper-tail form Q(.) for intervals with alpha >= 0 and in lower-tail form Phi(.) otherwise, so
// that nothing cancels even at alpha = 40. The truncated-normal moments come from Simpson's rule in
// long double (independent of the library's formulas).
//
// Set SHARDINIT_STATS_VERBOSE=1 to print every statistic next to its threshold.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <boost/math/policies/policy.hpp>
#include <boost/math/special_functions/erf.hpp>

#include "distributions/half_precision.hpp"
#include "shardinit/distributions/distribution.hpp"
#include "shardinit/engine/stream.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/initializers/colossal.hpp"

namespace {

using namespace shardinit;
using LD = long double;

constexpr Index kN = Index{1} << 20;
constexpr double kKsP = 1e-6;  // KS significance level

// ---- generation -------------------------------------------------------------------------------------

template <class T>
std::vector<T> generate(std::uint64_t seed, std::string_view stream_name, DType dtype, const Distribution& d,
                        Index n = kN) {
  EXPECT_EQ(sizeof(T), dtype_size(dtype));
  TensorSpec spec{std::string(stream_name), Shape{n}, dtype, stream_from_name(stream_name), d};
  TensorFiller filler(seed, spec);
  std::vector<T> out(static_cast<std::size_t>(n));
  filler.fill_flat(0, n, std::as_writable_bytes(std::span<T>(out)));
  return out;
}

bool verbose() {
  static const bool v = std::getenv("SHARDINIT_STATS_VERBOSE") != nullptr;
  return v;
}

void report(const std::string& what, LD value, LD limit) {
  if (verbose()) std::printf("    %-60s %.6Lg  (limit %.6Lg)\n", what.c_str(), value, limit);
}

// ---- exact CDFs (long double) -----------------------------------------------------------------------

using ErfPolicy = boost::math::policies::policy<
    boost::math::policies::underflow_error<boost::math::policies::ignore_error>>;

constexpr LD kSqrt2 = 1.41421356237309504880168872420969808L;

// Q(z) = P(Z > z) and Phi(z) = P(Z <= z), each with full relative accuracy in its own small tail.
LD upper_q(LD z) { return boost::math::erfc(z / kSqrt2, ErfPolicy()) / 2; }
LD lower_phi(LD z) { return boost::math::erfc(-z / kSqrt2, ErfPolicy()) / 2; }

struct UniformCdf {
  LD a, b;
  LD operator()(LD x) const { return x <= a ? 0.0L : x >= b ? 1.0L : (x - a) / (b - a); }
};

struct NormalCdf {
  LD mean, std;
  LD operator()(LD x) const { return lower_phi((x - mean) / std); }
};

// The normal(mean, std) distribution conditioned on [a, b].
struct TruncNormalCdf {
  LD mean, std, alpha, beta;
  bool upper;     // alpha >= 0: upper-tail form (Q(alpha) - Q(z)) / (Q(alpha) - Q(beta))
  LD at_alpha;    // Q(alpha) or Phi(alpha)
  LD mass;        // Q(alpha) - Q(beta) == Phi(beta) - Phi(alpha)
  TruncNormalCdf(double mean_, double std_, double a, double b)
      : mean(mean_), std(std_), alpha((LD(a) - mean) / std), beta((LD(b) - mean) / std), upper(alpha >= 0) {
    at_alpha = upper ? upper_q(alpha) : lower_phi(alpha);
    mass = upper ? at_alpha - upper_q(beta) : lower_phi(beta) - at_alpha;
  }
  LD operator()(LD x) const {
    const LD z = (x - mean) / std;
    if (z <= alpha) return 0;
    if (z >= beta) return 1;
    return upper ? (at_alpha - upper_q(z)) / mass : (lower_phi(z) - at_alpha) / mass;
  }
};

// Mean, variance and kurtosis of trunc_normal(mean, std, a, b), by Simpson's rule in long double on the
// standardized density exp(-(z^2 - r^2)/2) over [alpha, beta], r being the point of [alpha, beta]
// closest to 0 (where the density is largest, so nothing overflows). Beyond 40 from r the density is
// below exp(-800) of its maximum and is dropped. 2^16 panels: the integrands are analytic with scale
// >= 1/|alpha|, so the error is far below the 1e-10 relative accuracy the thresholds need.
struct Moments {
  LD mean, var, kurtosis;
};
Moments trunc_normal_moments(double mean, double std, double a, double b) {
  const LD alpha = (LD(a) - mean) / std, beta = (LD(b) - mean) / std;
  const LD r = std::clamp<LD>(0, alpha, beta);
  const LD lo = std::max(alpha, r - 40), hi = std::min(beta, r + 40);
  constexpr int kPanels = 1 << 16;  // even
  const LD h = (hi - lo) / kPanels;
  auto integrate = [&](auto g) {
    LD sum = 0;
    for (int i = 0; i <= kPanels; ++i) {
      const LD z = i == kPanels ? hi : lo + h * i;
      const LD w = (i == 0 || i == kPanels) ? 1 : (i % 2 == 1 ? 4 : 2);
      sum += w * g(z) * std::exp(-(z - r) * (z + r) / 2);
    }
    return sum * h / 3;
  };
  const LD m0 = integrate([](LD) { return LD(1); });
  const LD m1 = integrate([](LD z) { return z; }) / m0;
  const LD c2 = integrate([&](LD z) { return (z - m1) * (z - m1); }) / m0;
  const LD c4 = integrate([&](LD z) { const LD d = (z - m1) * (z - m1); return d * d; }) / m0;
  return {LD(mean) + LD(std) * m1, LD(std) * LD(std) * c2, c4 / (c2 * c2)};
}

// ---- statistics -------------------------------------------------------------------------------------

LD ks_critical(std::size_t n) { return std::sqrt(-std::log(LD(kKsP) / 2) / (2 * LD(n))); }

template <class T>
LD next_up(T x) { return LD(std::nextafter(x, std::numeric_limits<T>::infinity())); }
template <class T>
LD next_down(T x) { return LD(std::nextafter(x, -std::numeric_limits<T>::infinity())); }

// The KS distance between the sample and G, the CDF of RN(X) for X with the continuous CDF `cdf`
// (RN: rounding to nearest in T, the output type). G is a step function with G(x) = cdf(midpoint of x
// and its successor) and G(x-) = cdf(midpoint of its predecessor and x), so D = sup |F_N - G| is
// attained at the sample values and computed exactly below. (Comparing with the continuous cdf at the
// sample values instead would add a bias of up to density * spacing / 2, which is not negligible for
// f32 values near 40.) Midpoints of adjacent binary32/binary64 numbers are exact in x87 long double.
template <class T, class Cdf>
LD ks_distance(std::vector<T> values, const Cdf& cdf) {
  std::sort(values.begin(), values.end());
  const LD n = LD(values.size());
  LD d = 0;
  for (std::size_t i = 0; i < values.size();) {
    std::size_t j = i;
    while (j < values.size() && values[j] == values[i]) ++j;
    const T x = values[i];
    const LD below = (next_down(x) + LD(x)) / 2, above = (LD(x) + next_up(x)) / 2;
    d = std::max(d, LD(j) / n - cdf(above));  // F_N(x) - G(x)
    d = std::max(d, cdf(below) - LD(i) / n);  // G(x-) - F_N(x-)
    i = j;
  }
  return d;
}

template <class T, class Cdf>
void expect_ks(const std::vector<T>& values, const Cdf& cdf, const std::string& what) {
  const LD d = ks_distance(values, cdf);
  const LD crit = ks_critical(values.size());
  report("KS D, " + what, d, crit);
  EXPECT_LE(d, crit) << what << ": Kolmogorov-Smirnov distance " << double(d) << " exceeds D_crit "
                     << double(crit) << " (p = 1e-6, N = " << values.size() << ")";
}

template <class T>
LD sample_mean(const std::vector<T>& v) {
  LD s = 0;
  for (const T x : v) s += LD(x);
  return s / LD(v.size());
}
template <class T>
LD sample_variance(const std::vector<T>& v) {
  const LD m = sample_mean(v);
  LD s = 0;
  for (const T x : v) s += (LD(x) - m) * (LD(x) - m);
  return s / LD(v.size() - 1);
}

// Mean and variance against (mu, sigma^2) with the 5-sigma bounds derived at the top of the file.
template <class T>
void expect_moments(const std::vector<T>& v, LD mu, LD var, LD kurtosis, const std::string& what) {
  const LD n = LD(v.size());
  const LD mean = sample_mean(v), s2 = sample_variance(v);
  const LD mean_tol = 5 * std::sqrt(var / n);                 // 5 sigma / sqrt(N)
  const LD var_tol = 5 * var * std::sqrt((kurtosis - 1) / n);  // 5 sigma^2 sqrt((kurtosis - 1) / N)
  report("|mean - mu|, " + what, std::fabs(mean - mu), mean_tol);
  report("|s^2 - sigma^2|, " + what, std::fabs(s2 - var), var_tol);
  EXPECT_LE(std::fabs(mean - mu), mean_tol) << what << ": sample mean " << double(mean) << ", expected "
                                            << double(mu);
  EXPECT_LE(std::fabs(s2 - var), var_tol) << what << ": sample variance " << double(s2) << ", expected "
                                          << double(var);
}

// |count - n p| <= 5 sqrt(n p (1 - p)).
void expect_frequency(std::size_t count, std::size_t n, LD p, const std::string& what) {
  const LD sd = std::sqrt(LD(n) * p * (1 - p));
  ASSERT_GE(sd * sd, 25) << what << ": bin too small for the normal approximation (test design error)";
  report("|count - Np| (count " + std::to_string(count) + "), " + what, std::fabs(LD(count) - LD(n) * p), 5 * sd);
  EXPECT_LE(std::fabs(LD(count) - LD(n) * p), 5 * sd)
      << what << ": " << count << " of " << n << " samples, expected " << double(LD(n) * p) << " (p = "
      << double(p) << ", binomial sd " << double(sd) << ")";
}

template <class T>
LD correlation(const std::vector<T>& x, const std::vector<T>& y) {
  const LD mx = sample_mean(x), my = sample_mean(y);
  LD sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const LD dx = LD(x[i]) - mx, dy = LD(y[i]) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxy / std::sqrt(sxx * syy);
}

template <class T>
void expect_uncorrelated(const std::vector<T>& x, const std::vector<T>& y, const std::string& what) {
  ASSERT_EQ(x.size(), y.size());
  const LD r = correlation(x, y);
  const LD tol = 5 / std::sqrt(LD(x.size()));  // sqrt(N) r ~ N(0, 1) under independence
  report("|r|, " + what, std::fabs(r), tol);
  EXPECT_LE(std::fabs(r), tol) << what << ": correlation coefficient " << double(r);
}

// x[lag:] against x[:-lag].
template <class T>
void expect_no_lag_correlation(const std::vector<T>& v, std::size_t lag, const std::string& what) {
  const std::vector<T> head(v.begin(), v.end() - static_cast<std::ptrdiff_t>(lag));
  const std::vector<T> tail(v.begin() + static_cast<std::ptrdiff_t>(lag), v.end());
  expect_uncorrelated(head, tail, what + ", lag " + std::to_string(lag));
}

// Every value in [lo, hi] (closed) or [lo, hi) (half_open), compared exactly in long double.
template <class T>
void expect_within(const std::vector<T>& v, LD lo, LD hi, bool half_open, const std::string& what) {
  std::size_t outside = 0;
  T first_bad{};
  for (const T x : v) {
    const bool ok = LD(x) >= lo && (half_open ? LD(x) < hi : LD(x) <= hi);
    if (!ok && outside++ == 0) first_bad = x;
  }
  EXPECT_EQ(outside, 0u) << what << ": " << outside << " values outside " << "[" << double(lo)
                         << ", " << double(hi) << (half_open ? ")" : "]") << ", e.g. "
                         << static_cast<double>(first_bad);
}

// The sample reaches both ends of a support of width w: P(min - lo > t w) = (1 - t)^N ~ exp(-t N); with
// t = 20/N that is exp(-20) = 2e-9.
template <class T>
void expect_reaches(const std::vector<T>& v, LD lo, LD hi, const std::string& what) {
  const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
  const LD slack = 20 * (hi - lo) / LD(v.size());
  EXPECT_LE(LD(*mn), lo + slack) << what << ": minimum " << double(*mn) << " stays far from " << double(lo);
  EXPECT_GE(LD(*mx), hi - slack) << what << ": maximum " << double(*mx) << " stays far from " << double(hi);
}

// P(RN(X) >= t) and P(RN(X) <= t) for a representable t, from the continuous CDF (see ks_distance).
template <class T, class Cdf>
LD prob_at_or_above(T t, const Cdf& cdf) { return 1 - cdf((next_down(t) + LD(t)) / 2); }
template <class T, class Cdf>
LD prob_at_or_below(T t, const Cdf& cdf) { return cdf((LD(t) + next_up(t)) / 2); }

// The least T >= x and the greatest T <= x, for a long double x.
template <class T>
T least_at_or_above(LD x) {
  T t = static_cast<T>(x);
  if (LD(t) < x) t = std::nextafter(t, std::numeric_limits<T>::infinity());
  return t;
}
template <class T>
T greatest_at_or_below(LD x) {
  T t = static_cast<T>(x);
  if (LD(t) > x) t = std::nextafter(t, -std::numeric_limits<T>::infinity());
  return t;
}

template <class T, class Cdf>
void expect_bin_above(const std::vector<T>& v, LD threshold, const Cdf& cdf, const std::string& what) {
  const T t = least_at_or_above<T>(threshold);
  const auto count = static_cast<std::size_t>(std::count_if(v.begin(), v.end(), [t](T x) { return x >= t; }));
  expect_frequency(count, v.size(), prob_at_or_above(t, cdf), what);
}
template <class T, class Cdf>
void expect_bin_below(const std::vector<T>& v, LD threshold, const Cdf& cdf, const std::string& what) {
  const T t = greatest_at_or_below<T>(threshold);
  const auto count = static_cast<std::size_t>(std::count_if(v.begin(), v.end(), [t](T x) { return x <= t; }));
  expect_frequency(count, v.size(), prob_at_or_below(t, cdf), what);
}

// ---- whole-distribution checks ----------------------------------------------------------------------

template <class T>
void check_uniform(const std::vector<T>& v, double a, double b, const std::string& what) {
  const LD w = LD(b) - LD(a);
  expect_within(v, a, b, /*half_open=*/true, what);
  expect_reaches(v, a, b, what);
  expect_ks(v, UniformCdf{a, b}, what);
  // mean (a+b)/2, variance w^2/12, kurtosis 9/5. (The 24-bit unit uniform of the 32-bit types shifts
  // the mean by w 2^-25 and the CDF by at most 2^-24: negligible against the bounds.)
  expect_moments(v, (LD(a) + LD(b)) / 2, w * w / 12, 1.8L, what);
}

template <class T>
void check_normal(const std::vector<T>& v, double mean, double std, const std::string& what) {
  expect_ks(v, NormalCdf{mean, std}, what);
  expect_moments(v, mean, LD(std) * std, 3, what);
}

template <class T>
void check_trunc_normal(const std::vector<T>& v, double mean, double std, double a, double b,
                        const std::string& what) {
  expect_within(v, a, b, /*half_open=*/false, what);
  expect_ks(v, TruncNormalCdf(mean, std, a, b), what);
  const Moments m = trunc_normal_moments(mean, std, a, b);
  expect_moments(v, m.mean, m.var, m.kurtosis, what);
}

// ---- the reference itself ----------------------------------------------------------------------------

// The moment integrator and the truncated CDF are checked against closed forms, so that a wrong
// reference cannot make a wrong sample pass.
TEST(StatisticsReference, MomentsAndCdfMatchClosedForms) {
  // Untruncated (cut at +-40): N(0, 1) moments.
  const Moments n = trunc_normal_moments(0, 1, -100, 100);
  EXPECT_NEAR(double(n.mean), 0.0, 1e-15);
  EXPECT_NEAR(double(n.var), 1.0, 1e-12);
  EXPECT_NEAR(double(n.kurtosis), 3.0, 1e-12);
  // Standard normal truncated to [-2, 2]: variance 1 - 2*2*phi(2)/(Phi(2)-Phi(-2)) = 0.8796256610^2
  // (the constant of Colossal-AI's lecun_normal_).
  const Moments t = trunc_normal_moments(0, 1, -2, 2);
  EXPECT_NEAR(double(t.var), .87962566103423978 * .87962566103423978, 1e-12);
  // Upper tail [6, 8]: mean (phi(6) - phi(8)) / (Q(6) - Q(8)).
  const LD sqrt_2pi = std::sqrt(2 * 3.14159265358979323846264338327950288L);
  const LD phi6 = std::exp(-18.0L) / sqrt_2pi, phi8 = std::exp(-32.0L) / sqrt_2pi;
  const Moments u = trunc_normal_moments(0, 1, 6, 8);
  EXPECT_NEAR(double(u.mean), double((phi6 - phi8) / (upper_q(6) - upper_q(8))), 1e-10);
  // Far tail [40, 41]: the density is ~ 40 exp(-40 y) on y = x - 40, mean ~ 40 + 1/40.
  const Moments f = trunc_normal_moments(0, 1, 40, 41);
  EXPECT_NEAR(double(f.mean), 40.0 + 1 / 40.0, 1e-3);
  EXPECT_NEAR(double(f.kurtosis), 9.0, 0.1);  // exponential-like: kurtosis -> 9
  // CDF forms agree where both are accurate, and the upper-tail form at alpha = 40 is a proper CDF.
  const TruncNormalCdf c(0, 1, -2, 2);
  EXPECT_NEAR(double(c(0)), 0.5, 1e-18);
  const TruncNormalCdf far(0, 1, 40, 41);
  EXPECT_GT(far.mass, 0.0L);
  EXPECT_NEAR(double(far(40 + std::log(2.0L) / 40)), 0.5, 1e-3);  // median of ~ 40 exp(-40 y)
  EXPECT_EQ(far(41), 1.0L);
  const TruncNormalCdf mirror(0, 1, -41, -40);
  EXPECT_NEAR(double(mirror(-40 - std::log(2.0L) / 40)), 0.5, 1e-3);
}

// ---- 1. uniform ---------------------------------------------------------------------------------------

TEST(StatisticsUniform, F32KsMomentsBounds) {
  const double a = -3, b = 5;
  const auto v = generate<float>(0x5EED0001, "uniform.f32", DType::f32, Uniform{a, b});
  check_uniform(v, a, b, "uniform(-3, 5) f32");
}

TEST(StatisticsUniform, F64KsMomentsBounds) {
  const double a = 0.1, b = 0.7;  // not binary32 numbers
  const auto v = generate<double>(0x5EED0002, "uniform.f64", DType::f64, Uniform{a, b});
  check_uniform(v, a, b, "uniform(0.1, 0.7) f64");
}

// Symmetric bounds that are not binary32 numbers (kaiming_uniform(a=sqrt 5) on fan_in 768): the f32
// values must stay strictly below b in exact comparison, as must the f64 values.
TEST(StatisticsUniform, KaimingBoundIsHalfOpen) {
  const double bound = 1.0 / std::sqrt(768.0);
  const auto f = generate<float>(0x5EED0003, "uniform.kaiming.f32", DType::f32, Uniform{-bound, bound});
  check_uniform(f, -bound, bound, "uniform(+-1/sqrt 768) f32");
  const auto d = generate<double>(0x5EED0003, "uniform.kaiming.f64", DType::f64, Uniform{-bound, bound});
  check_uniform(d, -bound, bound, "uniform(+-1/sqrt 768) f64");
}

// [1, nextafterf(1, 2)) holds exactly one binary32 number, 1; a + (b - a) u rounds to b for u > 1/2,
// and the clamp must bring it back: every f32 value is exactly 1.0f (and bf16/f16 are RN of 1.0f).
// In f64 the same interval holds 2^29 doubles and is an ordinary uniform.
TEST(StatisticsUniform, OneFloatWideInterval) {
  const double a = 1.0, b = static_cast<double>(std::nextafter(1.0f, 2.0f));
  const auto f = generate<float>(0x5EED0004, "uniform.narrow", DType::f32, Uniform{a, b});
  EXPECT_EQ(std::count(f.begin(), f.end(), 1.0f), kN) << "every value must be exactly 1.0f";
  const auto bf = generate<std::uint16_t>(0x5EED0004, "uniform.narrow", DType::bf16, Uniform{a, b});
  const auto hf = generate<std::uint16_t>(0x5EED0004, "uniform.narrow", DType::f16, Uniform{a, b});
  EXPECT_EQ(std::count(bf.begin(), bf.end(), detail::bf16_from_f32(1.0f)), kN);
  EXPECT_EQ(std::count(hf.begin(), hf.end(), detail::f16_from_f32(1.0f)), kN);
  const auto d = generate<double>(0x5EED0004, "uniform.narrow", DType::f64, Uniform{a, b});
  check_uniform(d, a, b, "uniform(1, 1 + 2^-23) f64");
}

// [1, 1 + 3 * 2^-23) holds the binary32 numbers 1, 1 + 2^-23, 1 + 2^-22. With u = k 2^-24
// (k < 2^24) the binary64 value is 1 + 3k 2^-47, exact; rounding to binary32 (spacing 2^-23) gives
//   1          for 3k < 2^23                   -> k <= 2796202:            2796203 values of k
//   1 + 2^-23  for 2^23 < 3k < 3 * 2^23 (the tie k = 2^23 rounds to even, up) -> 5592405 values
//   1 + 2^-22  or b = 1 + 3 * 2^-23 (clamped to 1 + 2^-22) for k >= 2^23  -> 8388608 values
// so the specified (round, then clamp) frequencies are 2796203, 5592405, 8388608 out of 2^24.
TEST(StatisticsUniform, RoundingToUpperBoundIsClamped) {
  const double a = 1.0, b = 1.0 + 3 * 0x1p-23;
  const auto f = generate<float>(0x5EED0005, "uniform.clamp", DType::f32, Uniform{a, b});
  expect_within(f, a, b, /*half_open=*/true, "uniform(1, 1 + 3*2^-23) f32");
  const float values[3] = {1.0f, 1.0f + 0x1p-23f, 1.0f + 0x1p-22f};
  const LD counts[3] = {2796203, 5592405, 8388608};
  for (int i = 0; i < 3; ++i) {
    const auto c = static_cast<std::size_t>(std::count(f.begin(), f.end(), values[i]));
    expect_frequency(c, f.size(), counts[i] / 0x1p24L, "value 1 + " + std::to_string(i) + " * 2^-23");
  }
}

// a == b leaves no binary32 in [a, b): every element is RN(a).
TEST(StatisticsUniform, EmptyIntervalGivesRoundedA) {
  const auto f = generate<float>(0x5EED0006, "uniform.empty", DType::f32, Uniform{0.3, 0.3}, 4096);
  EXPECT_EQ(std::count(f.begin(), f.end(), 0.3f), 4096);
}

// ---- 2. normal ------------------------------------------------------------------------------------------

TEST(StatisticsNormal, F32KsMomentsTails) {
  const double mean = -1.5, std = 0.75;  // both binary32 numbers, so mean_R, std_R are exact
  const auto v = generate<float>(0x5EED0101, "normal.f32", DType::f32, Normal{mean, std});
  check_normal(v, mean, std, "normal(-1.5, 0.75) f32");
  const NormalCdf cdf{mean, std};
  // Tails: P(|z| >= 3) = 2.70e-3 (N p = 2831, sd 53) and P(|z| >= 4) = 6.33e-5 (N p = 66, sd 8.1).
  expect_bin_above(v, LD(mean) + 3 * LD(std), cdf, "z >= 3");
  expect_bin_below(v, LD(mean) - 3 * LD(std), cdf, "z <= -3");
  std::size_t beyond4 = 0;
  LD max_z = 0;
  for (const float x : v) {
    const LD z = std::fabs((LD(x) - mean) / std);
    beyond4 += z >= 4;
    max_z = std::max(max_z, z);
  }
  expect_frequency(beyond4, v.size(), 2 * upper_q(4), "|z| >= 4");
  // Documented: |z| <= sqrt(2 * 33 ln 2) = 6.764 < 6.8 for the 32-bit types (the smallest open uniform
  // is 2^-33). Below that bound but not absurdly so: P(max |z| < 4) = (1 - 6.33e-5)^N = exp(-66).
  EXPECT_LT(max_z, 6.8L);
  EXPECT_GT(max_z, 4.0L);
  report("max |z|, normal f32", max_z, 6.8L);
}

TEST(StatisticsNormal, F64KsMomentsTails) {
  const double mean = 0.25, std = 3.0;
  const auto v = generate<double>(0x5EED0102, "normal.f64", DType::f64, Normal{mean, std});
  check_normal(v, mean, std, "normal(0.25, 3) f64");
  const NormalCdf cdf{mean, std};
  expect_bin_above(v, LD(mean) + 3 * LD(std), cdf, "z >= 3");
  expect_bin_below(v, LD(mean) - 3 * LD(std), cdf, "z <= -3");
  LD max_z = 0;
  for (const double x : v) max_z = std::max(max_z, std::fabs((LD(x) - mean) / std));
  EXPECT_LT(max_z, 9.5L);  // documented: sqrt(2 * 65 ln 2) = 9.49 for f64
  EXPECT_GT(max_z, 4.0L);
}

TEST(StatisticsNormal, ZeroStdGivesExactlyTheMean) {
  const double mean = 0.3;
  const Index n = 4096;
  const auto f = generate<float>(0x5EED0103, "normal.zero", DType::f32, Normal{mean, 0.0}, n);
  EXPECT_EQ(std::count(f.begin(), f.end(), static_cast<float>(mean)), n);
  const auto d = generate<double>(0x5EED0103, "normal.zero", DType::f64, Normal{mean, 0.0}, n);
  EXPECT_EQ(std::count(d.begin(), d.end(), mean), n);
  const auto bf = generate<std::uint16_t>(0x5EED0103, "normal.zero", DType::bf16, Normal{mean, 0.0}, n);
  EXPECT_EQ(std::count(bf.begin(), bf.end(), detail::bf16_from_f32(static_cast<float>(mean))), n);
}

// ---- 3. truncated normal --------------------------------------------------------------------------------

// (a) The default trunc_normal(0, 1, -2, 2), with (h) the frequencies of the two outer bins.
// P(1.9 <= x <= 2) = (Phi(2) - Phi(1.9)) / (Phi(2) - Phi(-2)) = 6.25e-3: N p = 6554, sd 80.7.
template <class T>
void check_default_trunc_normal(std::uint64_t seed, DType dtype, const std::string& what) {
  const auto v = generate<T>(seed, "trunc_normal.default", dtype, TruncNormal{0, 1, -2, 2});
  check_trunc_normal(v, 0, 1, -2, 2, what);
  const TruncNormalCdf cdf(0, 1, -2, 2);
  expect_bin_above(v, 1.9L, cdf, what + ", bin [1.9, 2]");
  expect_bin_below(v, -1.9L, cdf, what + ", bin [-2, -1.9]");
}
TEST(StatisticsTruncNormal, DefaultF32) { check_default_trunc_normal<float>(0x5EED0201, DType::f32, "tn(0,1,-2,2) f32"); }
TEST(StatisticsTruncNormal, DefaultF64) { check_default_trunc_normal<double>(0x5EED0202, DType::f64, "tn(0,1,-2,2) f64"); }

// (b) An interval in the upper tail (alpha = 6 < 8: central method, through its p > 1/2 branch), and
// its mirror image in the lower tail. The CDF is in upper-tail (resp. lower-tail) form.
TEST(StatisticsTruncNormal, UpperTailF32) {
  const auto v = generate<float>(0x5EED0203, "trunc_normal.tail", DType::f32, TruncNormal{0, 1, 6, 8});
  check_trunc_normal(v, 0, 1, 6, 8, "tn(0,1,6,8) f32");
}
TEST(StatisticsTruncNormal, UpperTailF64) {
  const auto v = generate<double>(0x5EED0204, "trunc_normal.tail", DType::f64, TruncNormal{0, 1, 6, 8});
  check_trunc_normal(v, 0, 1, 6, 8, "tn(0,1,6,8) f64");
}
TEST(StatisticsTruncNormal, LowerTailF32) {
  const auto v = generate<float>(0x5EED0205, "trunc_normal.lower", DType::f32, TruncNormal{0, 1, -8, -6});
  check_trunc_normal(v, 0, 1, -8, -6, "tn(0,1,-8,-6) f32");
}

// (c) A tiny std inside wide bounds: a plain normal(0, 0.002), nothing piled up at the bounds and
// nothing beyond 7 std (the central method never sees a probability below 2^-33, and
// Q^-1(2^-33) = 6.4).
TEST(StatisticsTruncNormal, TinyStdF32) {
  const double std = 0.002;
  const auto v = generate<float>(0x5EED0206, "trunc_normal.tiny", DType::f32, TruncNormal{0, std, -2, 2});
  check_trunc_normal(v, 0, std, -2, 2, "tn(0,0.002,-2,2) f32");
  EXPECT_EQ(std::count_if(v.begin(), v.end(), [](float x) { return x == -2.0f || x == 2.0f; }), 0)
      << "values piled up at the bounds";
  const float max_abs = std::fabs(*std::max_element(v.begin(), v.end(), [](float x, float y) {
    return std::fabs(x) < std::fabs(y);
  }));
  EXPECT_LE(LD(max_abs), 7 * LD(std));
  // Plain normal tails: P(|z| >= 3) = 2.70e-3.
  expect_bin_above(v, 3 * LD(std), TruncNormalCdf(0, std, -2, 2), "z >= 3");
}

// (d) The mean outside [a, b]: normal(3, 1) on [-1, 0] (alpha = -4, beta = -3, lower-tail form).
TEST(StatisticsTruncNormal, MeanOutsideInterval) {
  const auto v = generate<float>(0x5EED0207, "trunc_normal.outside", DType::f32, TruncNormal{3, 1, -1, 0});
  check_trunc_normal(v, 3, 1, -1, 0, "tn(3,1,-1,0) f32");
}

// (e) The far-tail method: [40, 41] (Q(40) = 3.7e-350, representable in long double) and its mirror.
TEST(StatisticsTruncNormal, VeryFarTailF32) {
  const auto up = generate<float>(0x5EED0208, "trunc_normal.far", DType::f32, TruncNormal{0, 1, 40, 41});
  check_trunc_normal(up, 0, 1, 40, 41, "tn(0,1,40,41) f32");
  const auto down = generate<float>(0x5EED0209, "trunc_normal.far", DType::f32, TruncNormal{0, 1, -41, -40});
  check_trunc_normal(down, 0, 1, -41, -40, "tn(0,1,-41,-40) f32");
}
TEST(StatisticsTruncNormal, VeryFarTailF64) {
  const auto up = generate<double>(0x5EED020A, "trunc_normal.far", DType::f64, TruncNormal{0, 1, 40, 41});
  check_trunc_normal(up, 0, 1, 40, 41, "tn(0,1,40,41) f64");
  const auto down = generate<double>(0x5EED020B, "trunc_normal.far", DType::f64, TruncNormal{0, 1, -41, -40});
  check_trunc_normal(down, 0, 1, -41, -40, "tn(0,1,-41,-40) f64");
}

// The switch between the methods at alpha = 8, with a mean and std that the far-tail method must
// apply: alpha = 7.98 (central) and alpha = 8 (far tail), both on [alpha, alpha + 1] standardized.
TEST(StatisticsTruncNormal, MethodBoundary) {
  const double mean = 1.0, std = 0.5;
  for (const double alpha : {7.98, 8.0}) {
    const double a = mean + std * alpha, b = a + std;
    const auto v = generate<float>(0x5EED020C, "trunc_normal.boundary", DType::f32, TruncNormal{mean, std, a, b});
    check_trunc_normal(v, mean, std, a, b, "tn(1,0.5," + std::to_string(a) + "," + std::to_string(b) + ") f32");
  }
}

// (f) A narrow interval: [0.5, 0.5001], mass 3.5e-5 of the normal. Note for f32: the central method
// forms p = Q_beta + v * Delta in binary32, whose spacing ulp(0.3085) = 2^-25 is 8.5e-4 of Delta, so
// the f32 values take only ~1100 distinct values (the interval holds 1678 binary32 numbers) and the
// CDF carries a deterministic error of order 1e-3 (measured ~1.5e-3 at N = 2^24), inside D_crit but
// not negligible; narrower intervals near the centre (width < ~1e-5 std) exceed D_crit.
TEST(StatisticsTruncNormal, NarrowIntervalF32) {
  const auto v = generate<float>(0x5EED020D, "trunc_normal.narrow", DType::f32, TruncNormal{0, 1, 0.5, 0.5001});
  check_trunc_normal(v, 0, 1, 0.5, 0.5001, "tn(0,1,0.5,0.5001) f32");
}
TEST(StatisticsTruncNormal, NarrowIntervalF64) {
  const auto v = generate<double>(0x5EED020E, "trunc_normal.narrow", DType::f64, TruncNormal{0, 1, 0.5, 0.5001});
  check_trunc_normal(v, 0, 1, 0.5, 0.5001, "tn(0,1,0.5,0.5001) f64");
}

// Intervals so narrow that Phi(alpha) - Phi(beta) is far below the spacing of binary32 numbers near
// Phi(alpha): an inverse CDF through p = Phi(alpha) + u * mass would leave only a handful of distinct
// values (measured before the narrow method existed: D = 0.0036 for +-1e-5 and D = 0.074 for
// [0, 1e-6]). The narrow method samples relative to alpha, so KS must pass like any other case.
TEST(StatisticsTruncNormal, VeryNarrowIntervalsF32) {
  struct Case { double a, b; std::uint64_t seed; };
  for (const Case c : {Case{-1e-5, 1e-5, 0x5EED020F}, Case{0, 1e-6, 0x5EED0210}, Case{3, 3 + 1e-4, 0x5EED0211},
                       Case{-7.5, -7.5 + 1e-4, 0x5EED0212}}) {
    const std::string label = "tn(0,1," + std::to_string(c.a) + "," + std::to_string(c.b) + ") f32";
    SCOPED_TRACE(label);
    const auto v = generate<float>(c.seed, "trunc_normal.very_narrow", DType::f32, TruncNormal{0, 1, c.a, c.b});
    check_trunc_normal(v, 0, 1, c.a, c.b, label);
  }
}

// ---- bf16 / f16: round-to-nearest-even images of the f32 values ------------------------------------------

TEST(StatisticsHalfPrecision, Bf16AndF16AreRoundedF32) {
  const Distribution cases[] = {Uniform{-0.036, 0.036}, Normal{0.5, 2.0}, TruncNormal{0, 1, -2, 2},
                                TruncNormal{0, 1, 6, 8}, TruncNormal{0, 1, 40, 41}, Normal{0, 1e-3}};
  for (const auto& d : cases) {
    SCOPED_TRACE(describe(d));
    const auto f = generate<float>(0x5EED0301, "half", DType::f32, d);
    const auto bf = generate<std::uint16_t>(0x5EED0301, "half", DType::bf16, d);
    const auto hf = generate<std::uint16_t>(0x5EED0301, "half", DType::f16, d);
    std::size_t bad_bf = 0, bad_hf = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
      bad_bf += bf[i] != detail::bf16_from_f32(f[i]);
      bad_hf += hf[i] != detail::f16_from_f32(f[i]);
    }
    EXPECT_EQ(bad_bf, 0u) << "bf16 elements differing from RNE(f32)";
    EXPECT_EQ(bad_hf, 0u) << "f16 elements differing from RNE(f32)";
  }
}

// ---- 4. initializers --------------------------------------------------------------------------------------

template <class D>
D as(const Distribution& d) {
  EXPECT_TRUE(std::holds_alternative<D>(d)) << describe(d);
  return std::holds_alternative<D>(d) ? std::get<D>(d) : D{};
}

// kaiming_uniform_(a = sqrt 5) on fan_in 768 (nn.Linear's default): gain = sqrt(2 / (1 + 5)), so
// bound = sqrt 3 * gain / sqrt 768 = 1 / sqrt 768.
TEST(StatisticsInitializers, KaimingUniformSqrt5) {
  const auto init = init::kaiming_uniform_({.a = std::sqrt(5.0)});
  const auto u = as<Uniform>(init(init::Fans{768, 3072}));
  EXPECT_DOUBLE_EQ(u.b, 1 / std::sqrt(768.0));
  EXPECT_DOUBLE_EQ(u.a, -1 / std::sqrt(768.0));
  const auto v = generate<float>(0x5EED0401, "init.kaiming_uniform", DType::f32, u);
  check_uniform(v, u.a, u.b, "kaiming_uniform(sqrt 5) fan_in 768 f32");
}

// kaiming_normal_(relu, fan_out) on fans (768, 3072): std = sqrt 2 / sqrt 3072.
TEST(StatisticsInitializers, KaimingNormalReluFanOut) {
  const auto init = init::kaiming_normal_({.mode = init::FanMode::fan_out, .nonlinearity = init::Nonlinearity::relu});
  const auto n = as<Normal>(init(init::Fans{768, 3072}));
  EXPECT_EQ(n.mean, 0.0);
  EXPECT_DOUBLE_EQ(n.std, std::sqrt(2.0 / 3072.0));
  const auto v = generate<float>(0x5EED0402, "init.kaiming_normal", DType::f32, n);
  check_normal(v, n.mean, n.std, "kaiming_normal(relu, fan_out 3072) f32");
}

// xavier_uniform_ (Colossal-AI: a = sqrt 3, scale = 2, gain = 1) on fans (768, 3072):
// bound = sqrt 3 * sqrt(2 / (768 + 3072)).
TEST(StatisticsInitializers, XavierUniform) {
  const auto u = as<Uniform>(init::xavier_uniform_()(init::Fans{768, 3072}));
  EXPECT_DOUBLE_EQ(u.b, std::sqrt(3.0) * std::sqrt(2.0 / 3840.0));
  EXPECT_DOUBLE_EQ(u.a, -u.b);
  const auto v = generate<float>(0x5EED0403, "init.xavier_uniform", DType::f32, u);
  check_uniform(v, u.a, u.b, "xavier_uniform (768, 3072) f32");
}

// xavier_normal_ on fans (768, 3072): std = sqrt(2 / 3840).
TEST(StatisticsInitializers, XavierNormal) {
  const auto n = as<Normal>(init::xavier_normal_()(init::Fans{768, 3072}));
  EXPECT_EQ(n.mean, 0.0);
  EXPECT_DOUBLE_EQ(n.std, std::sqrt(2.0 / 3840.0));
  const auto v = generate<float>(0x5EED0404, "init.xavier_normal", DType::f32, n);
  check_normal(v, n.mean, n.std, "xavier_normal (768, 3072) f32");
}

// lecun_uniform_ on fan_in 768: bound = sqrt(3 / 768).
TEST(StatisticsInitializers, LecunUniform) {
  const auto u = as<Uniform>(init::lecun_uniform_()(init::Fans{768, std::nullopt}));
  EXPECT_DOUBLE_EQ(u.b, std::sqrt(3.0 / 768.0));
  EXPECT_DOUBLE_EQ(u.a, -u.b);
  const auto v = generate<float>(0x5EED0405, "init.lecun_uniform", DType::f32, u);
  check_uniform(v, u.a, u.b, "lecun_uniform fan_in 768 f32");
}

// lecun_normal_: trunc_normal(0, sqrt(1/fan_in) / .87962566103423978, -2, 2) with ABSOLUTE cutoffs.
// fan_in 768: std 0.041, the cutoffs are 48.6 std away (a plain normal). fan_in 1: std 1.137, the
// cutoffs are at +-1.76 std (a JAX-style +-2 std cut would be at +-2.27 and fail the KS test).
TEST(StatisticsInitializers, LecunNormalAbsoluteCutoffs) {
  for (const Index fan_in : {Index{768}, Index{1}}) {
    const auto t = as<TruncNormal>(init::lecun_normal_()(init::Fans{fan_in, std::nullopt}));
    const double expected_std = std::sqrt(1.0 / static_cast<double>(fan_in)) / .87962566103423978;
    EXPECT_EQ(t.mean, 0.0);
    EXPECT_DOUBLE_EQ(t.std, expected_std);
    EXPECT_EQ(t.a, -2.0);
    EXPECT_EQ(t.b, 2.0);
    const auto v = generate<float>(0x5EED0406 + static_cast<std::uint64_t>(fan_in), "init.lecun_normal", DType::f32, t);
    check_trunc_normal(v, t.mean, t.std, t.a, t.b, "lecun_normal fan_in " + std::to_string(fan_in) + " f32");
  }
}

// ---- 5. independence ----------------------------------------------------------------------------------------

// Different streams, adjacent seeds and neighbouring elements (lags 1 and 2: lanes of one Philox block,
// the two members of a Box-Muller pair; lag 4: the next block) are uncorrelated.
TEST(StatisticsIndependence, StreamsSeedsAndNeighbours) {
  const Distribution u01 = Uniform{0, 1};
  const auto s1 = generate<float>(0x5EED0501, "independence.a", DType::f32, u01);
  const auto s2 = generate<float>(0x5EED0501, "independence.b", DType::f32, u01);
  const auto s3 = generate<float>(0x5EED0502, "independence.a", DType::f32, u01);
  expect_uncorrelated(s1, s2, "uniform f32, two streams");
  expect_uncorrelated(s1, s3, "uniform f32, adjacent seeds");
  for (const std::size_t lag : {1, 2, 4}) expect_no_lag_correlation(s1, lag, "uniform f32");

  const Distribution n01 = Normal{0, 1};
  const auto n1 = generate<float>(0x5EED0503, "independence.a", DType::f32, n01);
  const auto n2 = generate<float>(0x5EED0503, "independence.b", DType::f32, n01);
  const auto n3 = generate<float>(0x5EED0504, "independence.a", DType::f32, n01);
  expect_uncorrelated(n1, n2, "normal f32, two streams");
  expect_uncorrelated(n1, n3, "normal f32, adjacent seeds");
  for (const std::size_t lag : {1, 2, 4}) expect_no_lag_correlation(n1, lag, "normal f32");
  // r cos and r sin of one pair share r: their squares are correlated for a faulty pairing (e.g. both
  // from the same angle); for independent normals corr(x^2, y^2) = 0 (x^2 has finite 4th moment).
  std::vector<float> even_sq, odd_sq;
  for (std::size_t i = 0; i + 1 < n1.size(); i += 2) {
    even_sq.push_back(n1[i] * n1[i]);
    odd_sq.push_back(n1[i + 1] * n1[i + 1]);
  }
  expect_uncorrelated(even_sq, odd_sq, "normal f32, squares of a Box-Muller pair");

  const auto d1 = generate<double>(0x5EED0505, "independence.a", DType::f64, n01);
  const auto d2 = generate<double>(0x5EED0505, "independence.b", DType::f64, n01);
  const auto d3 = generate<double>(0x5EED0506, "independence.a", DType::f64, n01);
  expect_uncorrelated(d1, d2, "normal f64, two streams");
  expect_uncorrelated(d1, d3, "normal f64, adjacent seeds");
  expect_no_lag_correlation(d1, 1, "normal f64");
}

}  // namespace
