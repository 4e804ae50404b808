#pragma once
// The scalar reference of stream format v1: per-tensor constants ("prepared" distributions) and the
// transforms from the Philox words of one block to the values of that block's elements
// (docs/stream-format.md, section 5). Templated on the compute type: float for f32/bf16/f16 tensors,
// double for f64 tensors.

#include <array>
#include <cstdint>
#include <utility>

#include "math/deterministic_math.hpp"
#include "distributions/uniform_bits.hpp"
#include "shardinit/distributions/distribution.hpp"

namespace shardinit::detail {

// Elements per Philox block and the element-sized slice of the block's words.
template <class Real> struct Lanes;
template <> struct Lanes<float> {
  static constexpr int kElementsPerBlock = 4;
  using Bits = std::uint32_t;
  static Bits element_bits(const std::array<std::uint32_t, 4>& w, int lane) noexcept { return w[lane]; }
};
template <> struct Lanes<double> {
  static constexpr int kElementsPerBlock = 2;
  using Bits = std::uint64_t;
  static Bits element_bits(const std::array<std::uint32_t, 4>& w, int lane) noexcept {
    return static_cast<std::uint64_t>(w[2 * lane]) | (static_cast<std::uint64_t>(w[2 * lane + 1]) << 32);
  }
};

template <class Real> Real open_uniform(typename Lanes<Real>::Bits bits) noexcept;
template <> inline float open_uniform<float>(std::uint32_t k) noexcept { return open_uniform32(k); }
template <> inline double open_uniform<double>(std::uint64_t K) noexcept { return open_uniform64(K); }

// NaN-safe clamp: a NaN (which the transforms never make) would become `lo`, never escape.
template <class Real>
Real clamp_to(Real v, Real lo, Real hi) noexcept {
  if (!(v >= lo)) return lo;
  if (v > hi) return hi;
  return v;
}

// Bounds for clamping to [a, b] (or [a, b)) in the compute type: the least Real >= a, the greatest
// Real <= b (or < b).
template <class Real> Real least_at_or_above(double a) noexcept;
template <class Real> Real greatest_at_or_below(double b, bool strictly_below) noexcept;

// ---- constant --------------------------------------------------------------------------------------

template <class Real>
struct ConstantTransform {
  Real value;
  explicit ConstantTransform(const Constant& c) : value(static_cast<Real>(c.value)) {}
};

// ---- uniform(a, b) ------------------------------------------------------------------------------------

// v = a + (b - a) * u in binary64 with u in [0, 1), rounded to Real, clamped into [a, b).
template <class Real>
struct UniformTransform {
  double a, width;
  Real lo, hi;
  bool degenerate;  // no Real lies in [a, b): every element is Real(a)
  explicit UniformTransform(const Uniform& u);
  Real operator()(typename Lanes<Real>::Bits bits) const noexcept {
    if (degenerate) return lo;
    const double v = a + width * unit_uniform(bits);
    return clamp_to(static_cast<Real>(v), lo, hi);
  }
};

// ---- normal(mean, std) by Box-Muller --------------------------------------------------------------

// cos and sin of 2*pi*t for the angle bits of one pair, by quadrant and reflection so that the
// polynomials only ever see [0, pi/4].
template <class Real>
std::pair<Real, Real> unit_circle(typename Lanes<Real>::Bits bits) noexcept;

template <class Real>
struct NormalTransform {
  Real mean, std;
  explicit NormalTransform(const Normal& n) : mean(static_cast<Real>(n.mean)), std(static_cast<Real>(n.std)) {}
  // Two standard normals from (radius bits, angle bits): r cos(theta), r sin(theta).
  std::pair<Real, Real> operator()(typename Lanes<Real>::Bits radius_bits,
                                   typename Lanes<Real>::Bits angle_bits) const noexcept {
    const Real u = open_uniform<Real>(radius_bits);
    const Real r = __builtin_sqrt(Real(-2) * math::log(u));
    const auto [c, s] = unit_circle<Real>(angle_bits);
    return {mean + std * (r * c), mean + std * (r * s)};
  }
};

// ---- trunc_normal(mean, std, a, b) by inverting the CDF --------------------------------------------

// Standardized bounds at or beyond this go to the far-tail method, whose arithmetic is binary64 for
// every dtype; inside it the binary32 central method keeps every tail probability well away from
// underflow.
inline constexpr double kFarTailThreshold = 8.0;
// Intervals over which the log-density changes by at most this much go to the narrow method: there
// the central method's probabilities would be too coarse (their spacing is set by Phi(alpha), not
// by the interval's own small mass), while a short power series in x - alpha is exact.
inline constexpr double kNarrowLogDensitySpan = 1.0 / 16;
inline constexpr int kNarrowSeriesTerms = 32;

// I(y) = integral over [0, y] of exp(-alpha s - s^2/2) ds, by its power series
// sum_k He_k(alpha) (-y)^k / (k+1)! times y (He_k: probabilists' Hermite polynomials), accurate to
// a few ulp while |alpha| y + y^2/2 stays small (the narrow method's domain).
double narrow_integral(double alpha, double y) noexcept;

template <class Real>
struct TruncNormalTransform {
  enum class Method { central, narrow, far_upper, far_lower };
  Method method;
  // central method (compute type)
  Real p_alpha, q_beta, delta, mean_r, std_r;
  // narrow and far-tail methods (binary64); the far-tail ones are expressed for the upper tail
  // (far_lower mirrors), the narrow one from alpha over [0, width].
  double alpha, width, integral_width, mills_alpha, tail_ratio, mean, std, a, b;
  Real lo, hi;
  bool degenerate;  // no Real lies in [a, b]: every element is Real(a)

  explicit TruncNormalTransform(const TruncNormal& t);

  Real operator()(typename Lanes<Real>::Bits bits) const noexcept {
    if (degenerate) return lo;
    if (method == Method::central) {
      const Real u = open_uniform<Real>(bits);
      const Real p_low = p_alpha + u * delta;
      Real x;
      if (p_low <= Real(0.5)) {
        x = math::normal_quantile(p_low);
      } else {
        const Real v = open_uniform<Real>(static_cast<typename Lanes<Real>::Bits>(~bits));
        const Real p_high = q_beta + v * delta;
        x = -math::normal_quantile(p_high);
      }
      return clamp_to(mean_r + std_r * x, lo, hi);
    }
    const double x = method == Method::narrow ? narrow_value(bits) : far_tail_value(bits);
    const double value = clamp_to(mean + std * x, a, b);
    return clamp_to(static_cast<Real>(value), lo, hi);
  }

  // Solves I(y) = u I(width) for y by four Newton steps from y = u width; returns alpha + y.
  double narrow_value(typename Lanes<Real>::Bits bits) const noexcept;
  // Solves Q(x) = Q(alpha) * (1 - u * (1 - Q(beta)/Q(alpha))) for x = alpha + y by four Newton steps
  // on log Q, with Q = phi * Mills ratio so that nothing underflows however far the tail.
  double far_tail_value(typename Lanes<Real>::Bits bits) const noexcept;
};

}  // namespace shardinit::detail
