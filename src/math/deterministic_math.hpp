#pragma once
// Elementary functions built only from IEEE-754 basic operations (+ - * / sqrt, exact scaling and
// conversions) evaluated in a fixed order. Unlike libm, whose results differ between versions and,
// in glibc, between FMA and non-FMA code paths chosen at run time, these give the same bits on every
// machine and compiler, which is what makes shardinit's output reproducible anywhere. The library is
// compiled with -ffp-contract=off so that no multiply-add is fused behind our back.
//
// The polynomial coefficients are the published ones of Cephes (logf, sinf/cosf, sin/cos),
// fdlibm's general formulas for log and exp (without its branches for small arguments) and Wichura's
// AS 241 (PPND7, PPND16). docs/stream-format.md section 8 states every step and constant normatively:
// a change here is a change of the stream format.

#include <bit>
#include <cstdint>
#include <limits>

namespace shardinit::math {

// ---- natural logarithm, x > 0 (finite) ------------------------------------------------------------

// Cephes logf: x = 2^e * m, m in [sqrt(1/2), sqrt(2)), log(m) by a degree-9 polynomial in m - 1.
inline float log(float x) noexcept {
  std::int32_t e = 0;
  if (x < std::numeric_limits<float>::min()) {  // subnormal: scale into the normal range first
    x *= 33554432.0f;                          // 2^25, exact
    e = -25;
  }
  const auto bits = std::bit_cast<std::uint32_t>(x);
  e += static_cast<std::int32_t>(bits >> 23) - 126;
  float m = std::bit_cast<float>((bits & 0x007FFFFFu) | 0x3F000000u);  // [0.5, 1)
  if (m < 0.707106781186547524f) {
    e -= 1;
    m = m + m - 1.0f;
  } else {
    m = m - 1.0f;
  }
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const auto fe = static_cast<float>(e);
  y = y + -2.12194440e-4f * fe;
  y = y + -0.5f * z;
  float r = m + y;
  r = r + 0.693359375f * fe;
  return r;
}

// fdlibm __ieee754_log: x = 2^k * (1 + f), 1 + f in [sqrt(2)/2, sqrt(2)), log(1+f) = f - f^2/2 + s*(f^2/2 + R(s^2)).
inline double log(double x) noexcept {
  constexpr double ln2_hi = 6.93147180369123816490e-01;
  constexpr double ln2_lo = 1.90821492927058770002e-10;
  constexpr double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                   Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                   Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                   Lg7 = 1.479819860511658591e-01;
  std::int64_t k = 0;
  if (x < std::numeric_limits<double>::min()) {
    x *= 18014398509481984.0;  // 2^54, exact
    k = -54;
  }
  auto bits = std::bit_cast<std::uint64_t>(x);
  k += static_cast<std::int64_t>(bits >> 52) - 1023;
  std::uint64_t mant = bits & 0x000FFFFFFFFFFFFFull;
  // Choose the exponent so that the scaled x lies in [sqrt(2)/2, sqrt(2)).
  const std::uint64_t i = (mant + 0x95F6400000000ull) & 0x10000000000000ull;
  bits = mant | (i ^ 0x3FF0000000000000ull);
  k += static_cast<std::int64_t>(i >> 52);
  const double f = std::bit_cast<double>(bits) - 1.0;
  const double s = f / (2.0 + f);
  const auto dk = static_cast<double>(k);
  const double z = s * s;
  const double w = z * z;
  const double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
  const double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
  const double R = t2 + t1;
  const double hfsq = 0.5 * f * f;
  return dk * ln2_hi - ((hfsq - (s * (hfsq + R) + dk * ln2_lo)) - f);
}

// ---- exponential (binary64) -------------------------------------------------------------------------

// 2^k as a double for -1022 <= k <= 1023 (exact).
inline double pow2(std::int64_t k) noexcept {
  return std::bit_cast<double>(static_cast<std::uint64_t>(k + 1023) << 52);
}

// fdlibm __ieee754_exp: x = k ln2 + r, |r| <= ln2/2, exp(r) by a rational form with a degree-5 polynomial.
inline double exp(double x) noexcept {
  constexpr double ln2_hi = 6.93147180369123816490e-01;
  constexpr double ln2_lo = 1.90821492927058770002e-10;
  constexpr double inv_ln2 = 1.44269504088896338700e+00;
  constexpr double P1 = 1.66666666666666019037e-01, P2 = -2.77777777770155933842e-03,
                   P3 = 6.61375632143793436117e-05, P4 = -1.65339022054652515390e-06,
                   P5 = 4.13813679705723846039e-08;
  if (x != x) return x;
  if (x > 709.782712893383973096) return std::numeric_limits<double>::infinity();
  if (x < -745.13321910194110842) return 0.0;
  const auto k = static_cast<std::int64_t>(x * inv_ln2 + (x < 0 ? -0.5 : 0.5));  // round half away
  const auto dk = static_cast<double>(k);
  const double hi = x - dk * ln2_hi;  // exact: ln2_hi has only 32 significant bits
  const double lo = dk * ln2_lo;
  const double r = hi - lo;
  const double t = r * r;
  const double c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  const double y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
  if (k >= -1021) return y * pow2(k);
  return (y * pow2(k + 1000)) * pow2(-1000);  // result subnormal: one rounding, in the last product
}

// ---- sine and cosine on [0, pi/4] (Cephes) ---------------------------------------------------------

inline float sin_octant(float x) noexcept {
  const float z = x * x;
  float y = -1.9515295891e-4f;
  y = y * z + 8.3321608736e-3f;
  y = y * z - 1.6666654611e-1f;
  return x + (y * z) * x;
}
inline float cos_octant(float x) noexcept {
  const float z = x * x;
  float y = 2.443315711809948e-5f;
  y = y * z - 1.388731625493765e-3f;
  y = y * z + 4.166664568298827e-2f;
  return (1.0f - 0.5f * z) + (y * z) * z;
}
inline double sin_octant(double x) noexcept {
  const double z = x * x;
  double y = 1.58962301576546568060e-10;
  y = y * z - 2.50507477628578072866e-8;
  y = y * z + 2.75573136213857245213e-6;
  y = y * z - 1.98412698295895385996e-4;
  y = y * z + 8.33333333332211858878e-3;
  y = y * z - 1.66666666666666307295e-1;
  return x + (y * z) * x;
}
inline double cos_octant(double x) noexcept {
  const double z = x * x;
  double y = -1.13585365213876817300e-11;
  y = y * z + 2.08757008419747316778e-9;
  y = y * z - 2.75573141792967388112e-7;
  y = y * z + 2.48015872888517045348e-5;
  y = y * z - 1.38888888888730564116e-3;
  y = y * z + 4.16666666666665929218e-2;
  return (1.0 - 0.5 * z) + (y * z) * z;
}

// ---- standard normal quantile (Wichura, AS 241) ------------------------------------------------------

// PPND7 in binary32: about 1e-7 relative accuracy. p in (0, 1).
inline float normal_quantile(float p) noexcept {
  const float q = p - 0.5f;
  if (q <= 0.425f && q >= -0.425f) {
    const float r = 0.180625f - q * q;
    const float num = ((5.9109374720e+1f * r + 1.5929113202e+2f) * r + 5.0434271938e+1f) * r + 3.3871327179e+0f;
    const float den = ((6.7187563600e+1f * r + 7.8757757664e+1f) * r + 1.7895169469e+1f) * r + 1.0f;
    return q * num / den;
  }
  float r = q < 0.0f ? p : 1.0f - p;
  r = __builtin_sqrtf(-log(r));
  float value;
  if (r <= 5.0f) {
    r = r - 1.6f;
    const float num = ((1.7023821103e-1f * r + 1.3067284816e+0f) * r + 2.7568153900e+0f) * r + 1.4234372777e+0f;
    const float den = (1.2021132975e-1f * r + 7.3700164250e-1f) * r + 1.0f;
    value = num / den;
  } else {
    r = r - 5.0f;
    const float num = ((1.7337203997e-2f * r + 4.2868294337e-1f) * r + 3.0812263860e+0f) * r + 6.6579051150e+0f;
    const float den = (1.2258202635e-2f * r + 2.4197894225e-1f) * r + 1.0f;
    value = num / den;
  }
  return q < 0.0f ? -value : value;
}

// PPND16 in binary64: about 1e-16 relative accuracy. p in (0, 1).
inline double normal_quantile(double p) noexcept {
  const double q = p - 0.5;
  if (q <= 0.425 && q >= -0.425) {
    const double r = 0.180625 - q * q;
    const double num =
        (((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r + 6.7265770927008700853e+4) * r +
             4.5921953931549871457e+4) * r + 1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r +
          1.3314166789178437745e+2) * r + 3.3871328727963666080e+0);
    const double den =
        (((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r + 3.9307895800092710610e+4) * r +
             2.1213794301586595867e+4) * r + 5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r +
          4.2313330701600911252e+1) * r + 1.0);
    return q * num / den;
  }
  double r = q < 0.0 ? p : 1.0 - p;
  r = __builtin_sqrt(-log(r));
  double value;
  if (r <= 5.0) {
    r = r - 1.6;
    const double num =
        (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r + 2.41780725177450611770e-1) * r +
             1.27045825245236838258e+0) * r + 3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r +
          4.63033784615654529590e+0) * r + 1.42343711074968357734e+0);
    const double den =
        (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r + 1.51986665636164571966e-2) * r +
             1.48103976427480074590e-1) * r + 6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r +
          2.05319162663775882187e+0) * r + 1.0);
    value = num / den;
  } else {
    r = r - 5.0;
    const double num =
        (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 1.24266094738807843860e-3) * r +
             2.65321895265761230930e-2) * r + 2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r +
          5.46378491116411436990e+0) * r + 6.65790464350110377720e+0);
    const double den =
        (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r + 1.84631831751005468180e-5) * r +
             7.86869131145613259100e-4) * r + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r +
          5.99832206555887937690e-1) * r + 1.0);
    value = num / den;
  }
  return q < 0.0 ? -value : value;
}

// ---- standard normal tail probabilities (binary64, per-tensor constants) ------------------------------

// phi(x) = exp(-x^2/2) / sqrt(2 pi), with x^2 split so that its rounding error does not reach exp.
inline double normal_density(double x) noexcept {
  constexpr double inv_sqrt_2pi = 0.398942280401432677939946059934;
  const double xh = std::bit_cast<double>(std::bit_cast<std::uint64_t>(x) & 0xFFFFFFFFF8000000ull);  // 26 bits
  const double xl = x - xh;
  const double big = xh * xh;                 // exact
  const double small = (xh + xh + xl) * xl;   // x^2 - xh^2, tiny
  return inv_sqrt_2pi * (exp(-0.5 * big) * exp(-0.5 * small));
}

// Mills ratio R(x) = Q(x) / phi(x) for x > 0, by Laplace's continued fraction
// R = 1/(x + 1/(x + 2/(x + 3/(x + ...)))) evaluated backwards from a fixed depth.
inline double mills_ratio(double x, int depth) noexcept {
  double t = x;
  for (int k = depth; k >= 1; --k) t = x + static_cast<double>(k) / t;
  return 1.0 / t;
}

// Depth of the continued fraction that reaches full binary64 accuracy at x (measured, see tests).
inline int mills_depth(double x) noexcept { return x < 2.0 ? 1000 : x < 4.0 ? 200 : x < 8.0 ? 50 : 20; }

// Q(x) = P(Z > x) for x >= 0 to a few ulp: Marsaglia's positive series below 1, Mills ratio above.
inline double normal_upper_tail(double x) noexcept {
  if (x < 1.0) {
    double sum = 0.0;
    double term = x;
    for (int n = 0; n < 60; ++n) {  // term_n = x^(2n+1) / (1*3*...*(2n+1))
      sum += term;
      term = term * (x * x) / static_cast<double>(2 * n + 3);
    }
    return 0.5 - normal_density(x) * sum;
  }
  if (x == std::numeric_limits<double>::infinity()) return 0.0;
  return normal_density(x) * mills_ratio(x, mills_depth(x));
}

// Phi(x) for x <= 0, Q(x) for x >= 0, each accurate in its own (small) tail.
inline double normal_cdf_lower(double x) noexcept { return normal_upper_tail(-x); }

}  // namespace shardinit::math
