#include "shardinit/distributions/distribution.hpp"

#include <cmath>
#include <string>

#include "shardinit/error.hpp"
#include "util/format_number.hpp"

namespace shardinit {

namespace {

using detail::format_double;

// The largest |z| that Box-Muller can return for this dtype: sqrt(-2 ln u) for the smallest open
// uniform u (2^-33 for the binary32 path, 2^-65 for binary64), rounded up.
double max_standard_normal(DType dtype) { return dtype == DType::f64 ? 9.5 : 6.8; }

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorKind::invalid_argument, message); }

void require_finite(const char* distribution, const char* parameter, double value) {
  if (!std::isfinite(value)) {
    fail(std::string(distribution) + ": " + parameter + " must be finite, got " + format_double(value));
  }
}

void require_in_range(const char* distribution, const char* parameter, double value, DType dtype) {
  const double max = dtype_max_finite(dtype);
  if (std::fabs(value) > max) {
    fail(std::string(distribution) + ": " + parameter + "=" + format_double(value) + " is outside the finite range of " +
         std::string(dtype_name(dtype)) + " (|x| <= " + format_double(max) + ")");
  }
}

}  // namespace

std::string describe(const Distribution& distribution) {
  struct Visitor {
    std::string operator()(const Constant& c) const { return "constant(value=" + format_double(c.value) + ")"; }
    std::string operator()(const Uniform& u) const {
      return "uniform(a=" + format_double(u.a) + ", b=" + format_double(u.b) + ")";
    }
    std::string operator()(const Normal& n) const {
      return "normal(mean=" + format_double(n.mean) + ", std=" + format_double(n.std) + ")";
    }
    std::string operator()(const TruncNormal& t) const {
      return "trunc_normal(mean=" + format_double(t.mean) + ", std=" + format_double(t.std) +
             ", a=" + format_double(t.a) + ", b=" + format_double(t.b) + ")";
    }
  };
  return std::visit(Visitor{}, distribution);
}

void validate(const Distribution& distribution, DType dtype) {
  struct Visitor {
    DType dtype;
    void operator()(const Constant& c) const {
      require_finite("constant", "value", c.value);
      require_in_range("constant", "value", c.value, dtype);
    }
    void operator()(const Uniform& u) const {
      require_finite("uniform", "a", u.a);
      require_finite("uniform", "b", u.b);
      if (u.a > u.b) fail("uniform: a=" + format_double(u.a) + " is greater than b=" + format_double(u.b));
      if (!std::isfinite(u.b - u.a)) {
        fail("uniform: the width b - a of [" + format_double(u.a) + ", " + format_double(u.b) + ") overflows binary64");
      }
      require_in_range("uniform", "a", u.a, dtype);
      require_in_range("uniform", "b", u.b, dtype);
    }
    void operator()(const Normal& n) const {
      require_finite("normal", "mean", n.mean);
      require_finite("normal", "std", n.std);
      if (n.std < 0) fail("normal: std=" + format_double(n.std) + " is negative");
      require_in_range("normal", "mean", n.mean, dtype);
      const double reach = std::fabs(n.mean) + max_standard_normal(dtype) * n.std;
      if (!(reach <= dtype_max_finite(dtype))) {
        fail("normal: mean=" + format_double(n.mean) + ", std=" + format_double(n.std) + " can produce values of magnitude " +
             format_double(reach) + ", beyond the finite range of " + std::string(dtype_name(dtype)));
      }
    }
    void operator()(const TruncNormal& t) const {
      require_finite("trunc_normal", "mean", t.mean);
      require_finite("trunc_normal", "std", t.std);
      require_finite("trunc_normal", "a", t.a);
      require_finite("trunc_normal", "b", t.b);
      if (t.std < 0) fail("trunc_normal: std=" + format_double(t.std) + " is negative");
      if (t.std == 0) fail("trunc_normal: std=0 leaves no distribution to truncate (use constant)");
      if (!(t.a < t.b)) {
        fail("trunc_normal: a=" + format_double(t.a) + " must be less than b=" + format_double(t.b));
      }
      require_in_range("trunc_normal", "a", t.a, dtype);
      require_in_range("trunc_normal", "b", t.b, dtype);
    }
  };
  std::visit(Visitor{dtype}, distribution);
}

}  // namespace shardinit
