#include "shardinit/initializers/colossal.hpp"

#include <array>
#include <cmath>
#include <string>
#include <utility>

#include "shardinit/error.hpp"
#include "util/format_number.hpp"

namespace shardinit::init {

namespace {

constexpr std::array<std::pair<Nonlinearity, std::string_view>, 12> kNonlinearities{{
    {Nonlinearity::linear, "linear"},
    {Nonlinearity::conv1d, "conv1d"},
    {Nonlinearity::conv2d, "conv2d"},
    {Nonlinearity::conv3d, "conv3d"},
    {Nonlinearity::conv_transpose1d, "conv_transpose1d"},
    {Nonlinearity::conv_transpose2d, "conv_transpose2d"},
    {Nonlinearity::conv_transpose3d, "conv_transpose3d"},
    {Nonlinearity::sigmoid, "sigmoid"},
    {Nonlinearity::tanh, "tanh"},
    {Nonlinearity::relu, "relu"},
    {Nonlinearity::leaky_relu, "leaky_relu"},
    {Nonlinearity::selu, "selu"},
}};

constexpr std::array<std::pair<Kind, std::string_view>, 12> kKinds{{
    {Kind::zeros, "zeros"},
    {Kind::ones, "ones"},
    {Kind::constant, "constant"},
    {Kind::uniform, "uniform"},
    {Kind::normal, "normal"},
    {Kind::trunc_normal, "trunc_normal"},
    {Kind::kaiming_uniform, "kaiming_uniform"},
    {Kind::kaiming_normal, "kaiming_normal"},
    {Kind::xavier_uniform, "xavier_uniform"},
    {Kind::xavier_normal, "xavier_normal"},
    {Kind::lecun_uniform, "lecun_uniform"},
    {Kind::lecun_normal, "lecun_normal"},
}};

template <class Table>
std::string list_names(const Table& table) {
  std::string names;
  for (const auto& [value, name] : table) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names;
}

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorKind::invalid_argument, message); }

Index require_fan(const std::optional<Index>& fan, std::string_view initializer, std::string_view which) {
  if (!fan) {
    fail(std::string(initializer) + " needs " + std::string(which) +
         ", which a tensor of rank < 2 cannot derive from its shape: give \"" + std::string(which) +
         "\" explicitly (Colossal-AI passes the layer's global in_features / out_features)");
  }
  if (*fan <= 0) fail(std::string(initializer) + ": " + std::string(which) + "=" + std::to_string(*fan) + " must be positive");
  return *fan;
}

// Colossal-AI's kaiming_*: fan by mode, std = calculate_gain(nonlinearity, a) / math.sqrt(fan).
double kaiming_std(const KaimingOptions& o, const Fans& fans, std::string_view name) {
  const Index fan = o.mode == FanMode::fan_in ? require_fan(fans.fan_in, name, "fan_in")
                                              : require_fan(fans.fan_out, name, "fan_out");
  return calculate_gain(o.nonlinearity, o.a) / std::sqrt(static_cast<double>(fan));
}

// Colossal-AI's xavier_*: fan = fan_in (+ fan_out when known), std = gain * math.sqrt(scale / float(fan)).
double xavier_std(double scale, double gain, const Fans& fans, std::string_view name) {
  Index fan = require_fan(fans.fan_in, name, "fan_in");
  if (fans.fan_out && __builtin_add_overflow(fan, require_fan(fans.fan_out, name, "fan_out"), &fan)) {
    fail(std::string(name) + ": fan_in + fan_out overflows 64 bits");
  }
  return gain * std::sqrt(scale / static_cast<double>(fan));
}

}  // namespace

FanMode parse_fan_mode(std::string_view text) {
  if (text == "fan_in") return FanMode::fan_in;
  if (text == "fan_out") return FanMode::fan_out;
  fail("unknown mode \"" + std::string(text) + "\" (expected fan_in or fan_out)");
}

std::string_view fan_mode_name(FanMode mode) noexcept { return mode == FanMode::fan_in ? "fan_in" : "fan_out"; }

Nonlinearity parse_nonlinearity(std::string_view text) {
  for (const auto& [value, name] : kNonlinearities) {
    if (text == name) return value;
  }
  fail("unknown nonlinearity \"" + std::string(text) + "\" (expected one of " + list_names(kNonlinearities) + ")");
}

std::string_view nonlinearity_name(Nonlinearity nonlinearity) noexcept {
  for (const auto& [value, name] : kNonlinearities) {
    if (value == nonlinearity) return name;
  }
  return "?";
}

std::string_view kind_name(Kind kind) noexcept {
  for (const auto& [value, name] : kKinds) {
    if (value == kind) return name;
  }
  return "?";
}

Kind parse_kind(std::string_view text) {
  for (const auto& [value, name] : kKinds) {
    if (text == name) return value;
  }
  fail("unknown initializer fn \"" + std::string(text) + "\" (expected one of " + list_names(kKinds) + ")");
}

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::tanh: return 5.0 / 3;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu:
      if (!std::isfinite(param)) fail("leaky_relu: negative slope a=" + detail::format_double(param) + " must be finite");
      return std::sqrt(2.0 / (1 + param * param));  // PyTorch: math.sqrt(2.0 / (1 + negative_slope ** 2))
    case Nonlinearity::selu: return 3.0 / 4;
    default: return 1.0;  // linear, conv*, conv_transpose*, sigmoid
  }
}

std::string_view fan_convention_name(FanConvention convention) noexcept {
  switch (convention) {
    case FanConvention::torch: return "torch";
    case FanConvention::in_out: return "in_out";
    case FanConvention::patch: return "patch";
  }
  return "?";
}

FanConvention parse_fan_convention(std::string_view text) {
  for (const FanConvention c : {FanConvention::torch, FanConvention::in_out, FanConvention::patch}) {
    if (text == fan_convention_name(c)) return c;
  }
  fail("unknown fan convention \"" + std::string(text) +
       "\" (expected \"torch\": (out, in, *kernel) as PyTorch reads it; \"in_out\": fan_in = shape[0], fan_out = shape[1]; "
       "\"patch\": fan_in = in * kernel, fan_out = out, as Colossal-AI's PatchEmbedding)");
}

Fans fans_from_shape(const Shape& shape, FanConvention convention) {
  if (convention == FanConvention::in_out) {
    if (shape.size() != 2) fail("fan convention \"in_out\" reads a 2-D (in, out) shape, not " + shape_to_string(shape));
    return Fans{shape[0], shape[1]};
  }
  if (convention == FanConvention::patch && shape.size() < 2) {
    fail("fan convention \"patch\" reads an (out, in, *kernel) shape, not " + shape_to_string(shape));
  }
  if (shape.size() < 2) return {};
  const auto multiply = [&shape](Index x, Index y) {
    Index product = 0;
    if (__builtin_mul_overflow(x, y, &product)) fail("the fans of shape " + shape_to_string(shape) + " overflow 64 bits");
    return product;
  };
  Index receptive_field = 1;
  for (std::size_t d = 2; d < shape.size(); ++d) receptive_field = multiply(receptive_field, shape[d]);
  const Index fan_out = convention == FanConvention::patch ? shape[0] : multiply(shape[0], receptive_field);
  return Fans{multiply(shape[1], receptive_field), fan_out};
}

Fans resolve_fans(const Fans& explicit_fans, const Shape& global_shape, FanConvention convention) {
  const Fans derived = fans_from_shape(global_shape, convention);
  return Fans{explicit_fans.fan_in ? explicit_fans.fan_in : derived.fan_in,
              explicit_fans.fan_out ? explicit_fans.fan_out : derived.fan_out};
}

bool Initializer::uses_fan_in() const noexcept {
  switch (kind_) {
    case Kind::kaiming_uniform:
    case Kind::kaiming_normal: return std::get<KaimingOptions>(options_).mode == FanMode::fan_in;
    case Kind::xavier_uniform:
    case Kind::xavier_normal:
    case Kind::lecun_uniform:
    case Kind::lecun_normal: return true;
    default: return false;
  }
}

bool Initializer::uses_fan_out() const noexcept {
  switch (kind_) {
    case Kind::kaiming_uniform:
    case Kind::kaiming_normal: return std::get<KaimingOptions>(options_).mode == FanMode::fan_out;
    case Kind::xavier_uniform:
    case Kind::xavier_normal: return true;  // added to fan_in when known
    default: return false;
  }
}

Distribution Initializer::operator()(const Fans& fans) const {
  const std::string_view name = kind_name(kind_);
  switch (kind_) {
    case Kind::zeros: return Constant{0.0};
    case Kind::ones: return Constant{1.0};
    case Kind::constant: return Constant{std::get<ConstantOptions>(options_).value};
    case Kind::uniform: {
      const auto& o = std::get<UniformOptions>(options_);
      return Uniform{o.a, o.b};
    }
    case Kind::normal: {
      const auto& o = std::get<NormalOptions>(options_);
      return Normal{o.mean, o.std};
    }
    case Kind::trunc_normal: {
      const auto& o = std::get<TruncNormalOptions>(options_);
      return TruncNormal{o.mean, o.std, o.a, o.b};
    }
    case Kind::kaiming_uniform: {
      const double std = kaiming_std(std::get<KaimingOptions>(options_), fans, name);
      const double bound = std::sqrt(3.0) * std;
      return Uniform{-bound, bound};
    }
    case Kind::kaiming_normal:
      return Normal{0.0, kaiming_std(std::get<KaimingOptions>(options_), fans, name)};
    case Kind::xavier_uniform: {
      const auto& o = std::get<XavierUniformOptions>(options_);
      const double bound = o.a * xavier_std(o.scale, o.gain, fans, name);
      return Uniform{-bound, bound};
    }
    case Kind::xavier_normal: {
      const auto& o = std::get<XavierNormalOptions>(options_);
      return Normal{0.0, xavier_std(o.scale, o.gain, fans, name)};
    }
    case Kind::lecun_uniform: {
      const double var = 1.0 / static_cast<double>(require_fan(fans.fan_in, name, "fan_in"));
      const double bound = std::sqrt(3 * var);
      return Uniform{-bound, bound};
    }
    case Kind::lecun_normal: {
      const double std = std::sqrt(1.0 / static_cast<double>(require_fan(fans.fan_in, name, "fan_in")));
      return TruncNormal{0.0, std / .87962566103423978, -2.0, 2.0};
    }
  }
  fail("unknown initializer");
}

Initializer zeros_() { return {Kind::zeros, std::monostate{}}; }
Initializer ones_() { return {Kind::ones, std::monostate{}}; }
Initializer constant_(ConstantOptions options) { return {Kind::constant, options}; }
Initializer uniform_(UniformOptions options) { return {Kind::uniform, options}; }
Initializer normal_(NormalOptions options) { return {Kind::normal, options}; }
Initializer trunc_normal_(TruncNormalOptions options) { return {Kind::trunc_normal, options}; }
Initializer kaiming_uniform_(KaimingOptions options) { return {Kind::kaiming_uniform, options}; }
Initializer kaiming_normal_(KaimingOptions options) { return {Kind::kaiming_normal, options}; }
Initializer xavier_uniform_(XavierUniformOptions options) { return {Kind::xavier_uniform, options}; }
Initializer xavier_normal_(XavierNormalOptions options) { return {Kind::xavier_normal, options}; }
Initializer lecun_uniform_() { return {Kind::lecun_uniform, std::monostate{}}; }
Initializer lecun_normal_() { return {Kind::lecun_normal, std::monostate{}}; }

}  // namespace shardinit::init
