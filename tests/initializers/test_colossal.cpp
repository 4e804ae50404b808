// The colossalai.nn.init initializers: gains and fans as PyTorch computes them, each factory's
// formula and defaults as colossalai/nn/init.py has them (doubles compared exactly, with the
// expression evaluated here in Python's operation order), and the error messages.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/initializers/colossal.hpp"

namespace {

namespace init = shardinit::init;
using init::Fans;
using init::FanMode;
using init::Kind;
using init::Nonlinearity;
using shardinit::Constant;
using shardinit::Distribution;
using shardinit::Index;
using shardinit::Normal;
using shardinit::TruncNormal;
using shardinit::Uniform;
using testing::HasSubstr;

const std::vector<std::pair<Nonlinearity, std::string>> kAllNonlinearities{
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
};

const std::vector<std::pair<Kind, std::string>> kAllKinds{
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
};

// Fans exercised by the formula tests (exactness matters most for values that are not squares).
const std::vector<Index> kFans{1, 2, 3, 7, 147, 768, 3072, 3136, 1'000'003, Index{1} << 40, 123'456'789'012};

template <class Fn>
std::string invalid_argument_message(Fn&& fn) {
  try {
    fn();
  } catch (const shardinit::Error& e) {
    EXPECT_EQ(e.kind(), shardinit::ErrorKind::invalid_argument) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a shardinit::Error: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return {};
}

// ---- calculate_gain ----------------------------------------------------------------------------------------

TEST(CalculateGain, EveryNonlinearityMatchesPyTorch) {
  for (const auto& [nonlinearity, name] : kAllNonlinearities) {
    SCOPED_TRACE(name);
    const double gain = init::calculate_gain(nonlinearity, 0.0);
    switch (nonlinearity) {
      case Nonlinearity::tanh: EXPECT_EQ(gain, 5.0 / 3); EXPECT_EQ(gain, 1.6666666666666667); break;
      case Nonlinearity::relu: EXPECT_EQ(gain, std::sqrt(2.0)); EXPECT_EQ(gain, 1.4142135623730951); break;
      case Nonlinearity::leaky_relu: EXPECT_EQ(gain, std::sqrt(2.0)); break;  // negative slope 0
      case Nonlinearity::selu: EXPECT_EQ(gain, 3.0 / 4); break;
      default: EXPECT_EQ(gain, 1.0); break;  // linear, conv*, conv_transpose*, sigmoid
    }
    // Only leaky_relu reads the parameter.
    if (nonlinearity != Nonlinearity::leaky_relu) {
      EXPECT_EQ(init::calculate_gain(nonlinearity, 0.37), gain);
    }
  }
}

TEST(CalculateGain, LeakyReluFollowsPyTorchFormula) {
  // Expected values printed by CPython: math.sqrt(2.0 / (1 + a ** 2)).
  const std::pair<double, double> python[] = {
      {0.01, 1.4141428569978354},  {0.2, 1.3867504905630728},  {std::sqrt(5.0), 0.5773502691896257},
      {-1.0, 1.0},                 {1e-3, 1.4142128552668443}, {100.0, 0.014141428569978354},
  };
  for (const auto& [a, want] : python) {
    EXPECT_EQ(init::calculate_gain(Nonlinearity::leaky_relu, a), want) << a;
    EXPECT_EQ(init::calculate_gain(Nonlinearity::leaky_relu, a), std::sqrt(2.0 / (1 + a * a))) << a;
  }
  const std::string message = invalid_argument_message(
      [] { (void)init::calculate_gain(Nonlinearity::leaky_relu, std::numeric_limits<double>::infinity()); });
  EXPECT_THAT(message, HasSubstr("inf"));
}

// ---- fans ----------------------------------------------------------------------------------------------------

TEST(ColossalFans, FromShapeMatchesPyTorch) {
  struct Case { shardinit::Shape shape; Index fan_in, fan_out; };
  const Case cases[] = {
      {{3072, 768}, 768, 3072},        // Linear(768, 3072).weight
      {{64, 3, 7, 7}, 147, 3136},      // Conv2d(3, 64, 7).weight
      {{5, 4, 3, 2, 1}, 24, 30},       // Conv3d-like, receptive field 6
      {{1, 1}, 1, 1},
      {{10, 20, 3}, 60, 30},           // Conv1d(20, 10, 3)
      {{2, 3, 0}, 0, 0},               // zero receptive field
      {{0, 5}, 5, 0},
  };
  for (const auto& c : cases) {
    const Fans fans = init::fans_from_shape(c.shape);
    ASSERT_TRUE(fans.fan_in.has_value()) << shardinit::shape_to_string(c.shape);
    ASSERT_TRUE(fans.fan_out.has_value()) << shardinit::shape_to_string(c.shape);
    EXPECT_EQ(*fans.fan_in, c.fan_in) << shardinit::shape_to_string(c.shape);
    EXPECT_EQ(*fans.fan_out, c.fan_out) << shardinit::shape_to_string(c.shape);
  }
}

TEST(ColossalFans, RankBelowTwoHasNone) {
  for (const shardinit::Shape& shape : {shardinit::Shape{}, shardinit::Shape{768}, shardinit::Shape{0}}) {
    const Fans fans = init::fans_from_shape(shape);
    EXPECT_FALSE(fans.fan_in.has_value()) << shardinit::shape_to_string(shape);
    EXPECT_FALSE(fans.fan_out.has_value()) << shardinit::shape_to_string(shape);
  }
}

TEST(ColossalFans, OverflowIsAnError) {
  const Index big = Index{1} << 40;
  const std::string message = invalid_argument_message([&] { (void)init::fans_from_shape({big, big, big}); });
  EXPECT_THAT(message, HasSubstr("overflow"));
}

TEST(ColossalFans, ResolveExplicitWinsPerFan) {
  const shardinit::Shape shape{3072, 768};
  Fans r = init::resolve_fans({}, shape);
  EXPECT_EQ(r.fan_in, 768);
  EXPECT_EQ(r.fan_out, 3072);
  r = init::resolve_fans({1000, std::nullopt}, shape);
  EXPECT_EQ(r.fan_in, 1000);
  EXPECT_EQ(r.fan_out, 3072);
  r = init::resolve_fans({std::nullopt, 2000}, shape);
  EXPECT_EQ(r.fan_in, 768);
  EXPECT_EQ(r.fan_out, 2000);
  r = init::resolve_fans({11, 22}, shape);
  EXPECT_EQ(r.fan_in, 11);
  EXPECT_EQ(r.fan_out, 22);
  // A 1-D tensor (bias) derives nothing: only what is given.
  r = init::resolve_fans({768, std::nullopt}, {3072});
  EXPECT_EQ(r.fan_in, 768);
  EXPECT_FALSE(r.fan_out.has_value());
  r = init::resolve_fans({}, {3072});
  EXPECT_FALSE(r.fan_in.has_value());
  EXPECT_FALSE(r.fan_out.has_value());
}

// ---- factories: exact Colossal-AI formulas -------------------------------------------------------------------

// A copy, never a reference: the distribution is usually a temporary (found by AddressSanitizer).
template <class D>
D as(const Distribution& d) {
  EXPECT_TRUE(std::holds_alternative<D>(d)) << shardinit::describe(d);
  const D* p = std::get_if<D>(&d);
  return p ? *p : D{};
}

TEST(ColossalFactories, ConstantsAndPlainDistributionsWithDefaults) {
  const Fans none{};
  EXPECT_EQ(as<Constant>(init::zeros_()(none)).value, 0.0);
  EXPECT_FALSE(std::signbit(as<Constant>(init::zeros_()(none)).value));
  EXPECT_EQ(as<Constant>(init::ones_()(none)).value, 1.0);
  EXPECT_EQ(as<Constant>(init::constant_({0.125})(none)).value, 0.125);
  // uniform_(a=0., b=1.), normal_(mean=0., std=1.), trunc_normal_(mean=0., std=1., a=-2., b=2.)
  const auto u = as<Uniform>(init::uniform_()(none));
  EXPECT_EQ(u.a, 0.0);
  EXPECT_EQ(u.b, 1.0);
  const auto n = as<Normal>(init::normal_()(none));
  EXPECT_EQ(n.mean, 0.0);
  EXPECT_EQ(n.std, 1.0);
  const auto t = as<TruncNormal>(init::trunc_normal_()(none));
  EXPECT_EQ(t.mean, 0.0);
  EXPECT_EQ(t.std, 1.0);
  EXPECT_EQ(t.a, -2.0);
  EXPECT_EQ(t.b, 2.0);
  // Given parameters pass through untouched.
  const auto& u2 = as<Uniform>(init::uniform_({-0.1, 0.3})(none));
  EXPECT_EQ(u2.a, -0.1);
  EXPECT_EQ(u2.b, 0.3);
  const auto& n2 = as<Normal>(init::normal_({0.5, 0.02})(none));
  EXPECT_EQ(n2.mean, 0.5);
  EXPECT_EQ(n2.std, 0.02);
  const auto& t2 = as<TruncNormal>(init::trunc_normal_({0.1, 0.02, -0.04, 0.06})(none));
  EXPECT_EQ(t2.mean, 0.1);
  EXPECT_EQ(t2.std, 0.02);
  EXPECT_EQ(t2.a, -0.04);
  EXPECT_EQ(t2.b, 0.06);
  // Defaults of the option structs are Colossal-AI's.
  EXPECT_EQ(init::KaimingOptions{}.a, 0.0);
  EXPECT_EQ(init::KaimingOptions{}.mode, FanMode::fan_in);
  EXPECT_EQ(init::KaimingOptions{}.nonlinearity, Nonlinearity::leaky_relu);
  EXPECT_EQ(init::XavierUniformOptions{}.a, std::sqrt(3.0));  // math.sqrt(3.)
  EXPECT_EQ(init::XavierUniformOptions{}.scale, 2.0);
  EXPECT_EQ(init::XavierUniformOptions{}.gain, 1.0);
  EXPECT_EQ(init::XavierNormalOptions{}.scale, 2.0);
  EXPECT_EQ(init::XavierNormalOptions{}.gain, 1.0);
}

TEST(ColossalFactories, KaimingUniformDefaultsAndVariants) {
  // std = calculate_gain(nonlinearity, a) / math.sqrt(fan); bound = math.sqrt(3.) * std
  for (const Index fan : kFans) {
    SCOPED_TRACE("fan " + std::to_string(fan));
    const auto d = as<Uniform>(init::kaiming_uniform_()(Fans{fan, std::nullopt}));
    const double std = std::sqrt(2.0 / (1 + 0.0 * 0.0)) / std::sqrt(static_cast<double>(fan));
    const double bound = std::sqrt(3.0) * std;
    EXPECT_EQ(d.a, -bound);
    EXPECT_EQ(d.b, bound);
    // The brief's form: sqrt(3) * sqrt(2) / sqrt(fan), same operations.
    EXPECT_EQ(d.b, std::sqrt(3.0) * (std::sqrt(2.0) / std::sqrt(static_cast<double>(fan))));
    for (const double a : {0.01, std::sqrt(5.0), 0.2}) {
      for (const auto& [nonlinearity, name] : kAllNonlinearities) {
        for (const FanMode mode : {FanMode::fan_in, FanMode::fan_out}) {
          const Fans fans = mode == FanMode::fan_in ? Fans{fan, 5} : Fans{5, fan};
          const auto v = as<Uniform>(init::kaiming_uniform_({a, mode, nonlinearity})(fans));
          const double s = init::calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
          EXPECT_EQ(v.b, std::sqrt(3.0) * s) << name << " a=" << a;
          EXPECT_EQ(v.a, -(std::sqrt(3.0) * s)) << name << " a=" << a;
        }
      }
    }
  }
  // A Colossal-AI example: Linear(768, 3072) with kaiming_uniform_(a=math.sqrt(5)) (CPython value).
  const auto linear = as<Uniform>(init::kaiming_uniform_({std::sqrt(5.0)})(init::fans_from_shape({3072, 768})));
  EXPECT_EQ(linear.b, 0.03608439182435161);
  // Default at fan_in 768, printed by CPython.
  EXPECT_EQ(as<Uniform>(init::kaiming_uniform_()(Fans{768, 3072})).b, 0.08838834764831845);
}

TEST(ColossalFactories, KaimingNormal) {
  for (const Index fan : kFans) {
    for (const auto& [nonlinearity, name] : kAllNonlinearities) {
      for (const FanMode mode : {FanMode::fan_in, FanMode::fan_out}) {
        const Fans fans = mode == FanMode::fan_in ? Fans{fan, std::nullopt} : Fans{std::nullopt, fan};
        const auto d = as<Normal>(init::kaiming_normal_({0.1, mode, nonlinearity})(fans));
        EXPECT_EQ(d.mean, 0.0);
        EXPECT_EQ(d.std, init::calculate_gain(nonlinearity, 0.1) / std::sqrt(static_cast<double>(fan)))
            << name << " fan " << fan;
      }
    }
    const auto d = as<Normal>(init::kaiming_normal_()(Fans{fan, std::nullopt}));
    EXPECT_EQ(d.std, std::sqrt(2.0) / std::sqrt(static_cast<double>(fan)));
  }
}

TEST(ColossalFactories, XavierUniformAndNormal) {
  // fan = fan_in (+ fan_out when given); std = gain * math.sqrt(scale / float(fan)); bound = a * std
  for (const Index fan_in : kFans) {
    for (const std::optional<Index> fan_out : {std::optional<Index>{}, std::optional<Index>{3072}, std::optional<Index>{7}}) {
      SCOPED_TRACE("fan_in " + std::to_string(fan_in) + " fan_out " + (fan_out ? std::to_string(*fan_out) : "none"));
      const Index fan = fan_in + fan_out.value_or(0);
      const Fans fans{fan_in, fan_out};
      {
        const auto d = as<Uniform>(init::xavier_uniform_()(fans));
        const double std = 1.0 * std::sqrt(2.0 / static_cast<double>(fan));
        const double bound = std::sqrt(3.0) * std;
        EXPECT_EQ(d.a, -bound);
        EXPECT_EQ(d.b, bound);
      }
      {
        const init::XavierUniformOptions o{0.7, 3.0, 1.3};
        const auto d = as<Uniform>(init::xavier_uniform_(o)(fans));
        const double std = o.gain * std::sqrt(o.scale / static_cast<double>(fan));
        EXPECT_EQ(d.b, o.a * std);
        EXPECT_EQ(d.a, -(o.a * std));
      }
      {
        const auto d = as<Normal>(init::xavier_normal_()(fans));
        EXPECT_EQ(d.mean, 0.0);
        EXPECT_EQ(d.std, 1.0 * std::sqrt(2.0 / static_cast<double>(fan)));
        const auto e = as<Normal>(init::xavier_normal_({0.5, std::sqrt(2.0)})(fans));
        EXPECT_EQ(e.std, std::sqrt(2.0) * std::sqrt(0.5 / static_cast<double>(fan)));
      }
    }
  }
  // CPython: 1.0 * math.sqrt(2. / float(768 + 3072)) * math.sqrt(3.)
  EXPECT_EQ(as<Uniform>(init::xavier_uniform_()(Fans{768, 3072})).b, 0.039528470752104736);
}

TEST(ColossalFactories, LecunUniformAndNormal) {
  for (const Index fan_in : kFans) {
    SCOPED_TRACE("fan_in " + std::to_string(fan_in));
    const Fans fans{fan_in, 999};
    // var = 1.0 / fan_in; bound = math.sqrt(3 * var)
    const auto u = as<Uniform>(init::lecun_uniform_()(fans));
    const double var = 1.0 / static_cast<double>(fan_in);
    EXPECT_EQ(u.b, std::sqrt(3 * var));
    EXPECT_EQ(u.a, -std::sqrt(3 * var));
    // std = math.sqrt(1.0 / fan_in); trunc_normal_(std=std / .87962566103423978): mean 0, a=-2, b=2 absolute
    const auto t = as<TruncNormal>(init::lecun_normal_()(fans));
    EXPECT_EQ(t.mean, 0.0);
    EXPECT_EQ(t.std, std::sqrt(1.0 / static_cast<double>(fan_in)) / .87962566103423978);
    EXPECT_EQ(t.a, -2.0);
    EXPECT_EQ(t.b, 2.0);
  }
  // CPython values at fan_in 768.
  EXPECT_EQ(as<Uniform>(init::lecun_uniform_()(Fans{768, std::nullopt})).b, 0.0625);
  EXPECT_EQ(as<TruncNormal>(init::lecun_normal_()(Fans{768, std::nullopt})).std, 0.041022441048302945);
}

TEST(ColossalFactories, FanOutIsIgnoredWhereTheFormulaDoesNotUseIt) {
  const auto a = as<Uniform>(init::lecun_uniform_()(Fans{100, std::nullopt}));
  const auto b = as<Uniform>(init::lecun_uniform_()(Fans{100, 5}));
  EXPECT_EQ(a.b, b.b);
  const auto c = as<Uniform>(init::kaiming_uniform_()(Fans{100, std::nullopt}));
  const auto d = as<Uniform>(init::kaiming_uniform_()(Fans{100, 7}));
  EXPECT_EQ(c.b, d.b);
}

TEST(ColossalFactories, UsesFanFlags) {
  struct Row { init::Initializer initializer; bool fan_in, fan_out; };
  const Row rows[] = {
      {init::zeros_(), false, false},
      {init::ones_(), false, false},
      {init::constant_({2.0}), false, false},
      {init::uniform_(), false, false},
      {init::normal_(), false, false},
      {init::trunc_normal_(), false, false},
      {init::kaiming_uniform_(), true, false},
      {init::kaiming_uniform_({0, FanMode::fan_out}), false, true},
      {init::kaiming_normal_(), true, false},
      {init::kaiming_normal_({0, FanMode::fan_out}), false, true},
      {init::xavier_uniform_(), true, true},
      {init::xavier_normal_(), true, true},
      {init::lecun_uniform_(), true, false},
      {init::lecun_normal_(), true, false},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(init::kind_name(row.initializer.kind())));
    EXPECT_EQ(row.initializer.uses_fan_in(), row.fan_in);
    EXPECT_EQ(row.initializer.uses_fan_out(), row.fan_out);
  }
}

// ---- errors ----------------------------------------------------------------------------------------------------

TEST(ColossalFactoryErrors, MissingFanNamesItAndSaysToGiveItExplicitly) {
  struct Row { init::Initializer initializer; Fans fans; std::string fan; };
  const Row rows[] = {
      {init::kaiming_uniform_(), Fans{std::nullopt, 10}, "fan_in"},
      {init::kaiming_uniform_({0, FanMode::fan_out}), Fans{10, std::nullopt}, "fan_out"},
      {init::kaiming_normal_(), Fans{}, "fan_in"},
      {init::kaiming_normal_({0, FanMode::fan_out}), Fans{10, std::nullopt}, "fan_out"},
      {init::xavier_uniform_(), Fans{std::nullopt, 10}, "fan_in"},
      {init::xavier_normal_(), Fans{}, "fan_in"},
      {init::lecun_uniform_(), Fans{std::nullopt, 10}, "fan_in"},
      {init::lecun_normal_(), Fans{}, "fan_in"},
  };
  for (const auto& row : rows) {
    const std::string kind(init::kind_name(row.initializer.kind()));
    SCOPED_TRACE(kind);
    const std::string message = invalid_argument_message([&] { (void)row.initializer(row.fans); });
    EXPECT_THAT(message, HasSubstr(row.fan));
    EXPECT_THAT(message, HasSubstr("explicitly"));
    EXPECT_THAT(message, HasSubstr(kind));
  }
  // Initializers that read no fan never complain.
  for (const auto& initializer : {init::zeros_(), init::ones_(), init::uniform_(), init::normal_(), init::trunc_normal_()}) {
    EXPECT_NO_THROW((void)initializer(Fans{}));
  }
}

TEST(ColossalFactoryErrors, ZeroAndNegativeFansAreRejected) {
  for (const Index bad : {Index{0}, Index{-1}, Index{-768}}) {
    SCOPED_TRACE("fan " + std::to_string(bad));
    for (const auto& initializer : {init::kaiming_uniform_(), init::kaiming_normal_(), init::xavier_uniform_(),
                                    init::xavier_normal_(), init::lecun_uniform_(), init::lecun_normal_()}) {
      const std::string message = invalid_argument_message([&] { (void)initializer(Fans{bad, 10}); });
      EXPECT_THAT(message, HasSubstr("fan_in=" + std::to_string(bad)));
      EXPECT_THAT(message, HasSubstr("positive"));
    }
    for (const auto& initializer : {init::xavier_uniform_(), init::xavier_normal_(),
                                    init::kaiming_uniform_({0, FanMode::fan_out})}) {
      const std::string message = invalid_argument_message([&] { (void)initializer(Fans{10, bad}); });
      EXPECT_THAT(message, HasSubstr("fan_out=" + std::to_string(bad)));
    }
  }
  const Index max = std::numeric_limits<Index>::max();
  const std::string message = invalid_argument_message([&] { (void)init::xavier_uniform_()(Fans{max, max}); });
  EXPECT_THAT(message, HasSubstr("overflow"));
}

TEST(InitializerParsing, NamesRoundTrip) {
  for (const auto& [nonlinearity, name] : kAllNonlinearities) {
    EXPECT_EQ(init::parse_nonlinearity(name), nonlinearity);
    EXPECT_EQ(init::nonlinearity_name(nonlinearity), name);
  }
  for (const auto& [kind, name] : kAllKinds) {
    EXPECT_EQ(init::parse_kind(name), kind);
    EXPECT_EQ(init::kind_name(kind), name);
  }
  EXPECT_EQ(init::parse_fan_mode("fan_in"), FanMode::fan_in);
  EXPECT_EQ(init::parse_fan_mode("fan_out"), FanMode::fan_out);
  EXPECT_EQ(init::fan_mode_name(FanMode::fan_in), "fan_in");
  EXPECT_EQ(init::fan_mode_name(FanMode::fan_out), "fan_out");
}

TEST(InitializerParsing, UnknownNamesAreRejectedListingTheValidOnes) {
  for (const std::string bad : {"kaiming", "Kaiming_uniform", "", "xavier_uniform_", "orthogonal"}) {
    const std::string message = invalid_argument_message([&] { (void)init::parse_kind(bad); });
    EXPECT_THAT(message, HasSubstr("\"" + bad + "\""));
    for (const auto& [kind, name] : kAllKinds) EXPECT_THAT(message, HasSubstr(name));
  }
  for (const std::string bad : {"gelu", "ReLU", "", "leaky-relu"}) {
    const std::string message = invalid_argument_message([&] { (void)init::parse_nonlinearity(bad); });
    EXPECT_THAT(message, HasSubstr("\"" + bad + "\""));
    for (const auto& [nonlinearity, name] : kAllNonlinearities) EXPECT_THAT(message, HasSubstr(name));
  }
  for (const std::string bad : {"fan_avg", "FAN_IN", ""}) {
    const std::string message = invalid_argument_message([&] { (void)init::parse_fan_mode(bad); });
    EXPECT_THAT(message, HasSubstr("\"" + bad + "\""));
    EXPECT_THAT(message, HasSubstr("fan_in"));
    EXPECT_THAT(message, HasSubstr("fan_out"));
  }
}

}  // namespace
