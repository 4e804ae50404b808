#include "distributions/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace shardinit::detail {

template <>
float least_at_or_above<float>(double a) noexcept {
  float f = static_cast<float>(a);
  if (static_cast<double>(f) < a) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}
template <>
double least_at_or_above<double>(double a) noexcept { return a; }

template <>
float greatest_at_or_below<float>(double b, bool strictly_below) noexcept {
  float f = static_cast<float>(b);
  const double back = static_cast<double>(f);
  if (back > b || (strictly_below && back == b)) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}
template <>
double greatest_at_or_below<double>(double b, bool strictly_below) noexcept {
  return strictly_below ? std::nextafter(b, -std::numeric_limits<double>::infinity()) : b;
}

template <class Real>
UniformTransform<Real>::UniformTransform(const Uniform& u)
    : a(u.a),
      width(u.b - u.a),
      lo(least_at_or_above<Real>(u.a)),
      hi(greatest_at_or_below<Real>(u.b, /*strictly_below=*/true)),
      degenerate(lo > hi) {
  if (degenerate) lo = static_cast<Real>(u.a);
}

namespace {

// (cos, sin) of the angle pi/2 * (quadrant + position) from the octant polynomials at phi, where
// phi is the position's distance in radians from the nearer end of its quadrant.
template <class Real>
std::pair<Real, Real> rotate_into_quadrant(Real phi, bool reflect, unsigned quadrant) noexcept {
  Real s = math::sin_octant(phi);
  Real c = math::cos_octant(phi);
  if (reflect) std::swap(s, c);  // the position was past pi/4: phi is measured from pi/2
  switch (quadrant) {
    case 0: return {c, s};
    case 1: return {-s, c};
    case 2: return {-c, -s};
    default: return {s, -c};
  }
}

}  // namespace

template <>
std::pair<float, float> unit_circle<float>(std::uint32_t bits) noexcept {
  // 24 angle bits: 2 for the quadrant, 22 for the position m in it (angle = pi/2 * m / 2^22).
  const std::uint32_t t = bits >> 8;
  const std::uint32_t m = t & 0x3FFFFFu;
  const bool reflect = m > 0x200000u;
  const std::uint32_t h = reflect ? 0x400000u - m : m;  // 0 .. 2^21
  constexpr float kStep = static_cast<float>(1.57079632679489661923 * 0x1p-22);  // RN32(RN64(pi/2) * 2^-22)
  return rotate_into_quadrant(static_cast<float>(h) * kStep, reflect, t >> 22);
}

template <>
std::pair<double, double> unit_circle<double>(std::uint64_t bits) noexcept {
  // 53 angle bits: 2 for the quadrant, 51 for the position in it.
  const std::uint64_t t = bits >> 11;
  const std::uint64_t m = t & ((std::uint64_t{1} << 51) - 1);
  const bool reflect = m > (std::uint64_t{1} << 50);
  const std::uint64_t h = reflect ? (std::uint64_t{1} << 51) - m : m;
  constexpr double kStep = 1.57079632679489661923 * 0x1p-51;  // RN64(pi/2) * 2^-51, exact scaling
  return rotate_into_quadrant(static_cast<double>(h) * kStep, reflect, static_cast<unsigned>(t >> 51));
}

namespace {
// Phi(x) and Q(x) = 1 - Phi(x), each computed from whichever tail is small.
double normal_cdf(double x) { return x <= 0 ? math::normal_upper_tail(-x) : 1.0 - math::normal_upper_tail(x); }
double normal_sf(double x) { return x >= 0 ? math::normal_upper_tail(x) : 1.0 - math::normal_upper_tail(-x); }
}  // namespace

template <class Real>
TruncNormalTransform<Real>::TruncNormalTransform(const TruncNormal& t)
    : method(Method::central),
      p_alpha(0), q_beta(0), delta(0),
      mean_r(static_cast<Real>(t.mean)), std_r(static_cast<Real>(t.std)),
      alpha(0), width(0), integral_width(0), mills_alpha(0), tail_ratio(0), mean(t.mean), std(t.std), a(t.a), b(t.b),
      lo(least_at_or_above<Real>(t.a)),
      hi(greatest_at_or_below<Real>(t.b, /*strictly_below=*/false)),
      degenerate(lo > hi) {
  if (degenerate) lo = static_cast<Real>(t.a);
  const double std_alpha = (t.a - t.mean) / t.std;
  const double std_beta = (t.b - t.mean) / t.std;
  if (std_alpha >= kFarTailThreshold || std_beta <= -kFarTailThreshold) {
    method = std_alpha >= kFarTailThreshold ? Method::far_upper : Method::far_lower;
    // Work on the upper tail [alpha, beta]; the lower tail is its mirror image.
    alpha = method == Method::far_upper ? std_alpha : -std_beta;
    const double beta = method == Method::far_upper ? std_beta : -std_alpha;
    mills_alpha = math::mills_ratio(alpha, math::mills_depth(alpha));
    // Q(beta) / Q(alpha) = exp(-(beta - alpha)(beta + alpha)/2) * R(beta) / R(alpha)
    tail_ratio = math::exp(-0.5 * ((beta - alpha) * (beta + alpha))) *
                 (math::mills_ratio(beta, math::mills_depth(beta)) / mills_alpha);
    return;
  }
  // The largest change of log density over [alpha, beta], relative to alpha: max |x^2 - alpha^2| / 2.
  const double span = std_alpha < 0 && std_beta > 0
                          ? 0.5 * std::max(std_alpha * std_alpha, std::fabs((std_beta - std_alpha) * (std_beta + std_alpha)))
                          : 0.5 * std::fabs((std_beta - std_alpha) * (std_beta + std_alpha));
  if (span <= kNarrowLogDensitySpan) {
    method = Method::narrow;
    alpha = std_alpha;
    width = std_beta - std_alpha;
    integral_width = narrow_integral(alpha, width);
    return;
  }
  const double P_alpha = normal_cdf(std_alpha);
  const double Q_beta = normal_sf(std_beta);
  double mass;  // Phi(beta) - Phi(alpha), from the side that keeps it accurate
  if (std_alpha >= 0) {
    mass = math::normal_upper_tail(std_alpha) - math::normal_upper_tail(std_beta);
  } else if (std_beta <= 0) {
    mass = math::normal_upper_tail(-std_beta) - math::normal_upper_tail(-std_alpha);
  } else {
    mass = (1.0 - math::normal_upper_tail(-std_alpha)) - Q_beta;
  }
  p_alpha = static_cast<Real>(P_alpha);
  q_beta = static_cast<Real>(Q_beta);
  delta = static_cast<Real>(mass);
}

double narrow_integral(double alpha, double y) noexcept {
  double hermite_previous = 0.0;  // He_{k-1}(alpha)
  double hermite = 1.0;           // He_k(alpha)
  double power = 1.0;             // (-y)^k / (k+1)!
  double sum = 0.0;
  for (int k = 0; k < kNarrowSeriesTerms; ++k) {
    sum = sum + hermite * power;
    const double hermite_next = alpha * hermite - static_cast<double>(k) * hermite_previous;
    hermite_previous = hermite;
    hermite = hermite_next;
    power = power * (-y) / static_cast<double>(k + 2);
  }
  return y * sum;
}

// u in (0, 1) (and v = 1 - u where needed) in binary64, from an element's bits.
template <class Bits>
double open_uniform_binary64(Bits bits) noexcept {
  if constexpr (sizeof(Bits) == 4) {
    return open_uniform32_as_double(bits);
  } else {
    return open_uniform64(bits);
  }
}

template <class Real>
double TruncNormalTransform<Real>::narrow_value(typename Lanes<Real>::Bits bits) const noexcept {
  const double u = open_uniform_binary64(bits);
  const double target = u * integral_width;
  double y = u * width;  // exact for a flat density; the density varies by at most e^(1/16) here
  for (int step = 0; step < 4; ++step) {
    const double density = math::exp(-(alpha * y + 0.5 * (y * y)));  // d/dy I(y)
    y = y - (narrow_integral(alpha, y) - target) / density;
    y = clamp_to(y, 0.0, width);
  }
  return alpha + y;
}

template <class Real>
double TruncNormalTransform<Real>::far_tail_value(typename Lanes<Real>::Bits bits) const noexcept {
  using Bits = typename Lanes<Real>::Bits;
  const double u = open_uniform_binary64(bits);  // u in (0, 1) and v = 1 - u, each accurate near 0
  const double v = open_uniform_binary64(static_cast<Bits>(~bits));
  // Target: log Q(x) - log Q(alpha) = log(1 - u (1 - ratio)) = log(v + u ratio) =: -E.
  const double E = -math::log(v + u * tail_ratio);
  double y = (E + E) / (alpha + __builtin_sqrt(alpha * alpha + (E + E)));  // root without the Mills term
  for (int step = 0; step < 4; ++step) {
    const double x = alpha + y;
    const double R = math::mills_ratio(x, 20);  // 20 terms: full accuracy for x >= 8
    const double h = (alpha * y + 0.5 * (y * y)) - math::log(R / mills_alpha) - E;
    y = y - h * R;  // d/dy [-log Q(alpha + y)] = 1 / R(alpha + y)
    if (y < 0) y = 0;
  }
  const double x = alpha + y;
  return method == Method::far_lower ? -x : x;
}

template struct UniformTransform<float>;
template struct UniformTransform<double>;
template struct TruncNormalTransform<float>;
template struct TruncNormalTransform<double>;

}  // namespace shardinit::detail
