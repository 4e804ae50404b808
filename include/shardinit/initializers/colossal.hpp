#pragma once
// The initializers of colossalai.nn.init, with the same names, parameters, defaults and formulas.
// Each factory returns an Initializer; applying it to the fans of a tensor gives the Distribution to
// sample. As in Colossal-AI's tensor-parallel layers, fans are those of the *global* tensor (or given
// explicitly), never of a local shard.

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "shardinit/distributions/distribution.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit::init {

enum class FanMode { fan_in, fan_out };
enum class Nonlinearity {
  linear, conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d,
  sigmoid, tanh, relu, leaky_relu, selu,
};

[[nodiscard]] FanMode parse_fan_mode(std::string_view text);            // "fan_in" | "fan_out"
[[nodiscard]] std::string_view fan_mode_name(FanMode mode) noexcept;
[[nodiscard]] Nonlinearity parse_nonlinearity(std::string_view text);   // PyTorch's names
[[nodiscard]] std::string_view nonlinearity_name(Nonlinearity nonlinearity) noexcept;

// torch.nn.init.calculate_gain(nonlinearity, param): 1 for linear, conv* and sigmoid; 5/3 for tanh;
// sqrt(2) for relu; sqrt(2 / (1 + param^2)) for leaky_relu; 3/4 for selu.
[[nodiscard]] double calculate_gain(Nonlinearity nonlinearity, double param);

struct Fans {
  std::optional<Index> fan_in;
  std::optional<Index> fan_out;
};

// How fans are read from a shape (docs/initializers.md), each rule named after who reads it so:
//   torch:  PyTorch's _calculate_fan_in_and_fan_out, shape (out, in, *kernel): fan_in = in * prod(kernel),
//           fan_out = out * prod(kernel); tensors of rank < 2 have no derivable fans;
//   in_out: shape (in, out): fan_in = shape[0], fan_out = shape[1], as Colossal-AI passes them for its
//           2d / 2.5d / 3d Linear weights (stored (in, out)) and its embeddings (num_embeddings,
//           embedding_dim: Embedding1D.reset_parameters and the like); 2-D shapes only;
//   patch:  shape (out, in, *kernel): fan_in = in * prod(kernel), fan_out = out, as Colossal-AI's
//           PatchEmbedding2D / 2p5D / 3D pass them (fan_in from the weight, fan_out = embed_size);
//           rank >= 2 only.
enum class FanConvention { torch, in_out, patch };
[[nodiscard]] std::string_view fan_convention_name(FanConvention convention) noexcept;  // "torch", "in_out", "patch"
[[nodiscard]] FanConvention parse_fan_convention(std::string_view text);

// The fans of `shape` under `convention`. Throws Error(invalid_argument) for a shape the convention
// does not read (in_out: not 2-D; patch: rank < 2) or fans that overflow 64 bits.
[[nodiscard]] Fans fans_from_shape(const Shape& shape, FanConvention convention = FanConvention::torch);

// Each fan explicitly given wins; a missing one is derived from the global shape when it can be.
[[nodiscard]] Fans resolve_fans(const Fans& explicit_fans, const Shape& global_shape,
                                FanConvention convention = FanConvention::torch);

struct UniformOptions { double a = 0.0; double b = 1.0; };
struct NormalOptions { double mean = 0.0; double std = 1.0; };
struct TruncNormalOptions { double mean = 0.0; double std = 1.0; double a = -2.0; double b = 2.0; };
struct KaimingOptions {
  double a = 0.0;  // negative slope of the rectifier (used by leaky_relu only)
  FanMode mode = FanMode::fan_in;
  Nonlinearity nonlinearity = Nonlinearity::leaky_relu;
};
struct XavierUniformOptions {
  double a = 1.7320508075688772;  // math.sqrt(3.)
  double scale = 2.0;
  double gain = 1.0;
};
struct XavierNormalOptions { double scale = 2.0; double gain = 1.0; };
struct ConstantOptions { double value = 0.0; };

enum class Kind {
  zeros, ones, constant, uniform, normal, trunc_normal, kaiming_uniform, kaiming_normal,
  xavier_uniform, xavier_normal, lecun_uniform, lecun_normal,
};
[[nodiscard]] std::string_view kind_name(Kind kind) noexcept;  // "kaiming_uniform"
// Throws Error(invalid_argument) listing the valid names.
[[nodiscard]] Kind parse_kind(std::string_view text);

using Options = std::variant<std::monostate, ConstantOptions, UniformOptions, NormalOptions,
                             TruncNormalOptions, KaimingOptions, XavierUniformOptions,
                             XavierNormalOptions>;

class Initializer {
 public:
  Initializer(Kind kind, Options options) : kind_(kind), options_(options) {}

  // The distribution for a tensor with these (global) fans. Throws Error(invalid_argument) when a
  // fan the formula needs is missing or not positive, with the message Colossal-AI's assertion
  // would give and the fix.
  [[nodiscard]] Distribution operator()(const Fans& fans) const;

  // Whether the formula reads fan_in / fan_out (so that a 1-D tensor must give them).
  [[nodiscard]] bool uses_fan_in() const noexcept;
  [[nodiscard]] bool uses_fan_out() const noexcept;

  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  [[nodiscard]] const Options& options() const noexcept { return options_; }

 private:
  Kind kind_;
  Options options_;
};

[[nodiscard]] Initializer zeros_();
[[nodiscard]] Initializer ones_();
[[nodiscard]] Initializer constant_(ConstantOptions options);
[[nodiscard]] Initializer uniform_(UniformOptions options = {});
[[nodiscard]] Initializer normal_(NormalOptions options = {});
[[nodiscard]] Initializer trunc_normal_(TruncNormalOptions options = {});
[[nodiscard]] Initializer kaiming_uniform_(KaimingOptions options = {});
[[nodiscard]] Initializer kaiming_normal_(KaimingOptions options = {});
[[nodiscard]] Initializer xavier_uniform_(XavierUniformOptions options = {});
[[nodiscard]] Initializer xavier_normal_(XavierNormalOptions options = {});
[[nodiscard]] Initializer lecun_uniform_();
// Colossal-AI's lecun_normal_: trunc_normal_(std = sqrt(1/fan_in) / .87962566103423978) with the
// *absolute* default cutoffs a = -2, b = 2 (JAX cuts at +-2 std instead); kept as Colossal-AI has it.
[[nodiscard]] Initializer lecun_normal_();

}  // namespace shardinit::init
