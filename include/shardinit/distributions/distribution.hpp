#pragma once
// The four distributions every initializer reduces to. Parameters are binary64, as in PyTorch and
// Colossal-AI; how they act on each dtype is specified in docs/stream-format.md, section 5.

#include <string>
#include <string_view>
#include <variant>

#include "shardinit/dtype.hpp"

namespace shardinit {

struct Constant {
  double value = 0.0;
};

// Values in [a, b): every value v of an f32/f64 tensor satisfies a <= v < b; bf16/f16 values are the
// round-to-nearest-even images of f32 values in that range. a == b gives the constant a.
struct Uniform {
  double a = 0.0;
  double b = 1.0;
};

// mean + std * z with z standard normal (Box-Muller). std == 0 gives the constant mean.
struct Normal {
  double mean = 0.0;
  double std = 1.0;
};

// The normal(mean, std) distribution conditioned on [a, b] (absolute cutoffs, as torch.nn.init),
// sampled by inverting its CDF: no rejection loop, any finite a < b, std > 0.
struct TruncNormal {
  double mean = 0.0;
  double std = 1.0;
  double a = -2.0;
  double b = 2.0;
};

using Distribution = std::variant<Constant, Uniform, Normal, TruncNormal>;

// "uniform(a=-0.5, b=0.5)": shortest round-trip decimal for every parameter.
[[nodiscard]] std::string describe(const Distribution& distribution);

// Throws Error(invalid_argument) naming the bad parameter when `distribution` cannot be generated
// for `dtype`: non-finite parameters, std < 0, a > b (uniform), a >= b or std == 0 (trunc_normal),
// or values that would not be finite in `dtype`.
void validate(const Distribution& distribution, DType dtype);

}  // namespace shardinit
