#pragma once
// Text histograms of a tensor's values beside its initializer's distribution, for `shardinit
// inspect --hist`: one row per bin, the observed count as a bar of '#', the expected count as a '|'
// marker on the same scale, so that a person sees at a glance whether the values follow the law.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numbers>
#include <string>
#include <vector>

#include "shardinit/distributions/distribution.hpp"

namespace shardinit::cli {

// The cumulative distribution function of `d` at x (display only: libm's erfc is fine here).
inline double distribution_cdf(const Distribution& d, double x) {
  const auto phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  if (const auto* c = std::get_if<Constant>(&d)) return x < c->value ? 0.0 : 1.0;
  if (const auto* u = std::get_if<Uniform>(&d)) return u->b <= u->a ? (x < u->a ? 0.0 : 1.0) : std::clamp((x - u->a) / (u->b - u->a), 0.0, 1.0);
  if (const auto* n = std::get_if<Normal>(&d)) return n->std == 0 ? (x < n->mean ? 0.0 : 1.0) : phi((x - n->mean) / n->std);
  const auto& t = std::get<TruncNormal>(d);
  const double lo = phi((t.a - t.mean) / t.std), hi = phi((t.b - t.mean) / t.std);
  if (x <= t.a) return 0.0;
  if (x >= t.b) return 1.0;
  return hi > lo ? (phi((x - t.mean) / t.std) - lo) / (hi - lo) : 0.5;
}

// Mean and standard deviation of `d` (truncated normal: the closed forms with phi and Phi).
inline std::pair<double, double> distribution_moments(const Distribution& d) {
  if (const auto* c = std::get_if<Constant>(&d)) return {c->value, 0.0};
  if (const auto* u = std::get_if<Uniform>(&d)) return {(u->a + u->b) / 2, (u->b - u->a) / std::sqrt(12.0)};
  if (const auto* n = std::get_if<Normal>(&d)) return {n->mean, n->std};
  const auto& t = std::get<TruncNormal>(d);
  const auto density = [](double z) { return std::exp(-z * z / 2) / std::sqrt(2 * std::numbers::pi); };
  const auto phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  const double alpha = (t.a - t.mean) / t.std, beta = (t.b - t.mean) / t.std, z = phi(beta) - phi(alpha);
  if (!(z > 0)) return {t.mean, 0.0};
  const double m = (density(alpha) - density(beta)) / z;
  const double a_term = std::isinf(alpha) ? 0.0 : alpha * density(alpha), b_term = std::isinf(beta) ? 0.0 : beta * density(beta);
  const double variance = 1 + (a_term - b_term) / z - m * m;
  return {t.mean + t.std * m, t.std * std::sqrt(std::max(variance, 0.0))};
}

// Prints the histogram of `counts` (bins of equal width over [lo, hi)) with the counts `d` predicts
// for `total` values.
inline void print_histogram(const std::vector<std::int64_t>& counts, double lo, double hi, std::int64_t total,
                            const Distribution& d) {
  constexpr int kWidth = 50;
  const std::size_t bins = counts.size();
  // The edge of bin i as (1 - t) lo + t hi: exact at both ends, and finite where hi - lo is not
  // (values near -1.7e308 and +1.7e308 in one tensor).
  const auto edge = [&](std::size_t i) {
    const double t = static_cast<double>(i) / static_cast<double>(bins);
    return (1 - t) * lo + t * hi;
  };
  std::vector<double> expected(bins);
  for (std::size_t i = 0; i < bins; ++i) {
    const double a = edge(i), b = edge(i + 1);
    // The last bin is closed, so that it holds the maximum.
    expected[i] = total * ((i + 1 == bins ? 1.0 : distribution_cdf(d, b)) - (i == 0 ? 0.0 : distribution_cdf(d, a)));
  }
  double top = 1;
  for (std::size_t i = 0; i < bins; ++i) top = std::max({top, static_cast<double>(counts[i]), expected[i]});
  std::printf("    %-25s %-*s %12s %12s\n", "bin", kWidth + 1, "observed #, expected |", "observed", "expected");
  for (std::size_t i = 0; i < bins; ++i) {
    const double a = edge(i), b = edge(i + 1);
    std::string bar(static_cast<std::size_t>(std::lround(counts[i] / top * kWidth)), '#');
    bar.resize(kWidth + 1, ' ');
    bar[static_cast<std::size_t>(std::lround(expected[i] / top * kWidth))] = '|';
    char range[64];
    std::snprintf(range, sizeof range, "[%.4g, %.4g%c", a, b, i + 1 == bins ? ']' : ')');
    std::printf("    %-25s %s %12lld %12.0f\n", range, bar.c_str(), static_cast<long long>(counts[i]), expected[i]);
  }
}

}  // namespace shardinit::cli
