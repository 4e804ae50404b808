// Manifest parsing, validation, canonical form and digest; SHA-256 known answers.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <regex>
#include <string>
#include <variant>

#include "shardinit/engine/stream.hpp"
#include "shardinit/error.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/util/sha256.hpp"

namespace shardinit {
namespace {

using ::testing::HasSubstr;

// The example manifest of the issue (also examples/manifests/gpt2-mlp.json).
constexpr const char* kExample = R"({
  "seed": 42,
  "tensors": [
    {"name": "fc1.weight", "shape": [3072, 768], "dtype": "f32",
     "init": {"fn": "kaiming_uniform", "a": 2.23606797749979, "mode": "fan_in", "nonlinearity": "leaky_relu"}},
    {"name": "fc1.bias", "shape": [3072], "dtype": "f32",
     "init": {"fn": "xavier_uniform", "a": 1, "scale": 1}, "fan_in": 768},
    {"name": "wte", "shape": [50257, 768], "dtype": "bf16", "init": {"fn": "normal", "std": 0.02}},
    {"name": "ln.weight", "shape": [768], "dtype": "f32", "init": {"fn": "ones"}}
  ]
})";

// A manifest whose tensors[1] is `bad` (tensors[0] is a valid tensor), so that messages must say which.
std::string with_second(const std::string& bad) {
  return R"({"seed": 1, "tensors": [{"name": "ok", "shape": [4], "init": {"fn": "zeros"}}, )" + bad + "]}";
}

// A manifest with one tensor.
std::string with_one(const std::string& tensor) { return R"({"seed": 1, "tensors": [)" + tensor + "]}"; }

// Parses `json`, requires an Error of `kind` whose message contains every one of `parts`; returns the message.
std::string expect_error(const std::string& json, ErrorKind kind, std::initializer_list<std::string> parts) {
  try {
    (void)parse_manifest(json);
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << "message: " << e.what() << "\ninput: " << json;
    for (const auto& part : parts) EXPECT_THAT(std::string(e.what()), HasSubstr(part)) << "input: " << json;
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-shardinit exception: " << e.what() << "\ninput: " << json;
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << json;
  return {};
}

// Same, for a bad tensor at index 1 named `name`: the message must name the tensor by index and name.
std::string expect_tensor_error(const std::string& bad_tensor, const std::string& name,
                                std::initializer_list<std::string> parts) {
  const std::string message = expect_error(with_second(bad_tensor), ErrorKind::invalid_argument, parts);
  EXPECT_THAT(message, HasSubstr("tensors[1]")) << "input: " << bad_tensor;
  EXPECT_THAT(message, HasSubstr("\"" + name + "\"")) << "input: " << bad_tensor;
  return message;
}

// ---------------------------------------------------------------------------------------------
// The example

TEST(Manifest, ExampleParses) {
  const Manifest m = parse_manifest(kExample);
  EXPECT_EQ(m.seed, 42u);
  ASSERT_EQ(m.tensors.size(), 4u);
  EXPECT_EQ(m.tensors[0].name, "fc1.weight");  // manifest order is kept
  EXPECT_EQ(m.tensors[1].name, "fc1.bias");
  EXPECT_EQ(m.tensors[2].name, "wte");
  EXPECT_EQ(m.tensors[3].name, "ln.weight");

  const auto& w = m.tensors[0];
  EXPECT_EQ(w.shape, (Shape{3072, 768}));
  EXPECT_EQ(w.dtype, DType::f32);
  EXPECT_EQ(w.initializer.kind(), init::Kind::kaiming_uniform);
  EXPECT_FALSE(w.explicit_fans.fan_in.has_value());
  ASSERT_TRUE(w.fans.fan_in.has_value());
  EXPECT_EQ(*w.fans.fan_in, 768);  // from shape [3072, 768]: fan_in = shape[1]
  EXPECT_FALSE(w.fans.fan_out.has_value());  // kaiming fan_in mode does not read fan_out
  EXPECT_EQ(w.stream, stream_from_name("fc1.weight"));
  EXPECT_FALSE(w.explicit_stream.has_value());
  EXPECT_FALSE(w.empty);
  ASSERT_TRUE(std::holds_alternative<Uniform>(w.distribution));
  // gain = sqrt(2 / (1 + 5)), std = gain / sqrt(768), bound = sqrt(3) * std = 1 / sqrt(768)
  const double bound = 1.0 / std::sqrt(768.0);
  EXPECT_NEAR(std::get<Uniform>(w.distribution).b, bound, 1e-15);
  EXPECT_NEAR(std::get<Uniform>(w.distribution).a, -bound, 1e-15);
  EXPECT_EQ(std::get<Uniform>(w.distribution).a, -std::get<Uniform>(w.distribution).b);

  const auto& b = m.tensors[1];
  EXPECT_EQ(b.shape, (Shape{3072}));
  EXPECT_EQ(b.initializer.kind(), init::Kind::xavier_uniform);
  ASSERT_TRUE(b.explicit_fans.fan_in.has_value());
  EXPECT_EQ(*b.explicit_fans.fan_in, 768);
  ASSERT_TRUE(b.fans.fan_in.has_value());
  EXPECT_EQ(*b.fans.fan_in, 768);
  EXPECT_FALSE(b.fans.fan_out.has_value());  // a 1-D bias has no fan_out: xavier uses fan_in only
  ASSERT_TRUE(std::holds_alternative<Uniform>(b.distribution));
  // std = gain * sqrt(scale / fan_in) = sqrt(1/768); bound = a * std with a = 1
  EXPECT_NEAR(std::get<Uniform>(b.distribution).b, std::sqrt(1.0 / 768.0), 1e-15);
  EXPECT_NEAR(std::get<Uniform>(b.distribution).a, -std::sqrt(1.0 / 768.0), 1e-15);

  const auto& e = m.tensors[2];
  EXPECT_EQ(e.shape, (Shape{50257, 768}));
  EXPECT_EQ(e.dtype, DType::bf16);
  EXPECT_EQ(e.initializer.kind(), init::Kind::normal);
  ASSERT_TRUE(std::holds_alternative<Normal>(e.distribution));
  EXPECT_EQ(std::get<Normal>(e.distribution).mean, 0.0);
  EXPECT_EQ(std::get<Normal>(e.distribution).std, 0.02);
  EXPECT_FALSE(e.fans.fan_in.has_value());  // normal reads no fan
  EXPECT_FALSE(e.fans.fan_out.has_value());

  const auto& ln = m.tensors[3];
  EXPECT_EQ(ln.shape, (Shape{768}));
  EXPECT_EQ(ln.initializer.kind(), init::Kind::ones);
  ASSERT_TRUE(std::holds_alternative<Constant>(ln.distribution));
  EXPECT_EQ(std::get<Constant>(ln.distribution).value, 1.0);

  const TensorSpec spec = e.spec();
  EXPECT_EQ(spec.name, "wte");
  EXPECT_EQ(spec.stream, stream_from_name("wte"));
  EXPECT_EQ(spec.dtype, DType::bf16);
}

TEST(Manifest, ExampleFileLoadsAndEqualsTheIssueExample) {
  const Manifest from_file = load_manifest(std::filesystem::path(SHARDINIT_EXAMPLES_DIR) / "manifests" / "gpt2-mlp.json");
  EXPECT_EQ(canonical_spec_json(from_file), canonical_spec_json(parse_manifest(kExample)));
}

TEST(Manifest, DtypeDefaultsToF32AndAllDtypesParse) {
  const Manifest m = parse_manifest(R"({"seed": 0, "tensors": [
    {"name": "a", "shape": [2], "init": {"fn": "zeros"}},
    {"name": "b", "shape": [2], "dtype": "f64", "init": {"fn": "zeros"}},
    {"name": "c", "shape": [2], "dtype": "bf16", "init": {"fn": "zeros"}},
    {"name": "d", "shape": [2], "dtype": "f16", "init": {"fn": "zeros"}},
    {"name": "e", "shape": [], "dtype": "f32", "init": {"fn": "zeros"}}]})");
  EXPECT_EQ(m.tensors[0].dtype, DType::f32);
  EXPECT_EQ(m.tensors[1].dtype, DType::f64);
  EXPECT_EQ(m.tensors[2].dtype, DType::bf16);
  EXPECT_EQ(m.tensors[3].dtype, DType::f16);
  EXPECT_EQ(m.tensors[4].shape, Shape{});  // a scalar
  EXPECT_EQ(m.seed, 0u);
}

TEST(Manifest, LargestSeedAndExplicitStream) {
  const Manifest m = parse_manifest(
      R"({"seed": 18446744073709551615, "tensors": [{"name": "a", "shape": [2], "init": {"fn": "zeros"}, "stream": 18446744073709551615}]})");
  EXPECT_EQ(m.seed, UINT64_MAX);
  ASSERT_TRUE(m.tensors[0].explicit_stream.has_value());
  EXPECT_EQ(m.tensors[0].stream, UINT64_MAX);
}

// JSON's -0 is an integer equal to 0 (nlohmann reads it as a signed zero): a seed, stream or
// dimension of -0 is 0, as Python's json reads it, and digests alike.
TEST(Manifest, NegativeZeroIsZero) {
  const Manifest a = parse_manifest(R"({"seed": -0, "tensors": [{"name": "a", "shape": [-0, 2], "init": {"fn": "zeros"}, "stream": -0}]})");
  const Manifest b = parse_manifest(R"({"seed": 0, "tensors": [{"name": "a", "shape": [0, 2], "init": {"fn": "zeros"}, "stream": 0}]})");
  EXPECT_EQ(a.seed, 0u);
  EXPECT_EQ(a.tensors[0].shape, (Shape{0, 2}));
  EXPECT_EQ(a.tensors[0].stream, 0u);
  EXPECT_EQ(manifest_digest(a), manifest_digest(b));
}

TEST(Manifest, EmptyTensorListIsValid) {
  EXPECT_TRUE(parse_manifest(R"({"seed": 3, "tensors": []})").tensors.empty());
}

// ---------------------------------------------------------------------------------------------
// Defaults: those of colossalai.nn.init

init::Initializer initializer_of(const std::string& init_json, const std::string& shape = "[6, 4]") {
  const Manifest m = parse_manifest(with_one(R"({"name": "t", "shape": )" + shape + R"(, "init": )" + init_json + "}"));
  return m.tensors.at(0).initializer;
}

Distribution distribution_of(const std::string& init_json, const std::string& shape = "[6, 4]") {
  const Manifest m = parse_manifest(with_one(R"({"name": "t", "shape": )" + shape + R"(, "init": )" + init_json + "}"));
  return m.tensors.at(0).distribution;
}

TEST(ManifestDefaults, Uniform) {
  const auto o = std::get<init::UniformOptions>(initializer_of(R"({"fn": "uniform"})").options());
  EXPECT_EQ(o.a, 0.0);
  EXPECT_EQ(o.b, 1.0);
  const auto d = std::get<Uniform>(distribution_of(R"({"fn": "uniform"})"));
  EXPECT_EQ(d.a, 0.0);
  EXPECT_EQ(d.b, 1.0);
}

TEST(ManifestDefaults, Normal) {
  const auto o = std::get<init::NormalOptions>(initializer_of(R"({"fn": "normal"})").options());
  EXPECT_EQ(o.mean, 0.0);
  EXPECT_EQ(o.std, 1.0);
  const auto p = std::get<init::NormalOptions>(initializer_of(R"({"fn": "normal", "mean": 0.5})").options());
  EXPECT_EQ(p.mean, 0.5);
  EXPECT_EQ(p.std, 1.0);
}

TEST(ManifestDefaults, TruncNormal) {
  const auto o = std::get<init::TruncNormalOptions>(initializer_of(R"({"fn": "trunc_normal"})").options());
  EXPECT_EQ(o.mean, 0.0);
  EXPECT_EQ(o.std, 1.0);
  EXPECT_EQ(o.a, -2.0);
  EXPECT_EQ(o.b, 2.0);
  const auto d = std::get<TruncNormal>(distribution_of(R"({"fn": "trunc_normal", "std": 0.02})"));
  EXPECT_EQ(d.std, 0.02);
  EXPECT_EQ(d.a, -2.0);  // absolute cutoffs, as torch.nn.init
  EXPECT_EQ(d.b, 2.0);
}

TEST(ManifestDefaults, KaimingUniformAndNormal) {
  for (const char* fn : {"kaiming_uniform", "kaiming_normal"}) {
    const auto o = std::get<init::KaimingOptions>(initializer_of(std::string(R"({"fn": ")") + fn + "\"}").options());
    EXPECT_EQ(o.a, 0.0) << fn;
    EXPECT_EQ(o.mode, init::FanMode::fan_in) << fn;
    EXPECT_EQ(o.nonlinearity, init::Nonlinearity::leaky_relu) << fn;
  }
  // shape [6, 4]: fan_in 4; leaky_relu with a = 0 has gain sqrt(2): std = sqrt(2) / 2.
  const auto u = std::get<Uniform>(distribution_of(R"({"fn": "kaiming_uniform"})"));
  EXPECT_NEAR(u.b, std::sqrt(3.0) * std::sqrt(2.0) / 2.0, 1e-15);
  const auto n = std::get<Normal>(distribution_of(R"({"fn": "kaiming_normal"})"));
  EXPECT_NEAR(n.std, std::sqrt(2.0) / 2.0, 1e-15);
  EXPECT_EQ(n.mean, 0.0);
  // mode fan_out reads shape[0] = 6.
  const auto f = std::get<Normal>(distribution_of(R"({"fn": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu"})"));
  EXPECT_NEAR(f.std, std::sqrt(2.0) / std::sqrt(6.0), 1e-15);
}

TEST(ManifestDefaults, XavierUniform) {
  const auto o = std::get<init::XavierUniformOptions>(initializer_of(R"({"fn": "xavier_uniform"})").options());
  EXPECT_EQ(o.a, std::sqrt(3.0));
  EXPECT_EQ(o.scale, 2.0);
  EXPECT_EQ(o.gain, 1.0);
  // [6, 4]: fan = 4 + 6; bound = sqrt(3) * sqrt(2 / 10) = sqrt(6 / 10) (Glorot).
  const auto d = std::get<Uniform>(distribution_of(R"({"fn": "xavier_uniform"})"));
  EXPECT_NEAR(d.b, std::sqrt(0.6), 1e-15);
  EXPECT_NEAR(d.a, -std::sqrt(0.6), 1e-15);
}

TEST(ManifestDefaults, XavierNormal) {
  const auto o = std::get<init::XavierNormalOptions>(initializer_of(R"({"fn": "xavier_normal"})").options());
  EXPECT_EQ(o.scale, 2.0);
  EXPECT_EQ(o.gain, 1.0);
  const auto d = std::get<Normal>(distribution_of(R"({"fn": "xavier_normal", "gain": 2})"));
  EXPECT_NEAR(d.std, 2.0 * std::sqrt(2.0 / 10.0), 1e-15);
}

TEST(ManifestDefaults, LecunAndConstants) {
  const auto lu = std::get<Uniform>(distribution_of(R"({"fn": "lecun_uniform"})"));
  EXPECT_NEAR(lu.b, std::sqrt(3.0 / 4.0), 1e-15);
  const auto ln = std::get<TruncNormal>(distribution_of(R"({"fn": "lecun_normal"})"));
  EXPECT_NEAR(ln.std, std::sqrt(1.0 / 4.0) / .87962566103423978, 1e-15);
  EXPECT_EQ(ln.a, -2.0);
  EXPECT_EQ(ln.b, 2.0);
  EXPECT_EQ(std::get<Constant>(distribution_of(R"({"fn": "zeros"})")).value, 0.0);
  EXPECT_EQ(std::get<Constant>(distribution_of(R"({"fn": "ones"})")).value, 1.0);
  EXPECT_EQ(std::get<Constant>(distribution_of(R"({"fn": "constant", "val": -0.25})")).value, -0.25);
}

TEST(Manifest, ExplicitFansWinOverTheShape) {
  const Manifest m = parse_manifest(with_one(
      R"({"name": "w", "shape": [6, 4], "init": {"fn": "xavier_normal"}, "fan_in": 100, "fan_out": 200})"));
  EXPECT_EQ(*m.tensors[0].fans.fan_in, 100);
  EXPECT_EQ(*m.tensors[0].fans.fan_out, 200);
  EXPECT_NEAR(std::get<Normal>(m.tensors[0].distribution).std, std::sqrt(2.0 / 300.0), 1e-15);
  // Only fan_in given: fan_out still comes from the shape.
  const Manifest n = parse_manifest(with_one(R"({"name": "w", "shape": [6, 4], "init": {"fn": "xavier_normal"}, "fan_in": 100})"));
  EXPECT_EQ(*n.tensors[0].fans.fan_in, 100);
  EXPECT_EQ(*n.tensors[0].fans.fan_out, 6);
}

TEST(Manifest, ConvShapeFansIncludeTheReceptiveField) {
  const Manifest m = parse_manifest(with_one(R"({"name": "conv", "shape": [8, 3, 5, 5], "init": {"fn": "xavier_uniform"}})"));
  EXPECT_EQ(*m.tensors[0].fans.fan_in, 3 * 25);
  EXPECT_EQ(*m.tensors[0].fans.fan_out, 8 * 25);
}

// ---------------------------------------------------------------------------------------------
// Errors: kind and message

TEST(ManifestErrors, MalformedJsonHasLineAndColumn) {
  const std::string text = "{\n  \"seed\": 1,\n  \"tensors\": [\n    {\"name\": \"a\" \"shape\": [1]}\n  ]\n}";
  const std::string message = expect_error(text, ErrorKind::parse, {"line 4", "column"});
  EXPECT_TRUE(std::regex_search(message, std::regex("line [0-9]+, column [0-9]+"))) << message;
  expect_error("", ErrorKind::parse, {"line", "column"});
  expect_error(R"({"seed": 1, "tensors": [)", ErrorKind::parse, {"line 1", "column"});
  expect_error(R"({"seed": 1, "tensors": []} trailing)", ErrorKind::parse, {"line", "column"});
  expect_error(R"({"seed": 1, /* comment */ "tensors": []})", ErrorKind::parse, {"line", "column"});
  // load_manifest names the file.
  const auto path = std::filesystem::temp_directory_path() / ("shardinit_manifest_" + std::to_string(::getpid()) + ".json");
  { std::ofstream(path) << "{\"seed\": 1,"; }
  try {
    (void)load_manifest(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::parse);
    EXPECT_THAT(std::string(e.what()), HasSubstr(path.string()));
    EXPECT_THAT(std::string(e.what()), HasSubstr("line"));
  }
  std::filesystem::remove(path);
}

TEST(ManifestErrors, NulByteDoesNotEndTheDocument) {
  // What follows a NUL byte is still part of the input, and is not JSON.
  expect_error(std::string("{\"seed\": 1, \"tensors\": []}\0{\"garbage\"", 37), ErrorKind::parse, {"line", "column"});
  expect_error(std::string("{\"seed\": 1, \"tensors\": []}\0", 27), ErrorKind::parse, {"line", "column"});
}

TEST(ManifestErrors, MissingFileIsAnIoError) {
  try {
    (void)load_manifest("/nonexistent-shardinit-dir/manifest.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_THAT(std::string(e.what()), HasSubstr("/nonexistent-shardinit-dir/manifest.json"));
  }
}

TEST(ManifestErrors, WrongTypes) {
  expect_tensor_error(R"({"name": "w", "shape": "x", "init": {"fn": "zeros"}})", "w", {"shape", "\"x\""});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "normal", "std": "0.1"}})", "w", {"std", "\"0.1\""});
  expect_tensor_error(R"({"name": "w", "shape": [2.5], "init": {"fn": "zeros"}})", "w", {"shape[0]", "2.5"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "dtype": 32, "init": {"fn": "zeros"}})", "w", {"dtype", "32"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": "zeros"})", "w", {"init", "\"zeros\""});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "zeros"}, "stream": -4})", "w", {"stream", "-4"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "zeros"}, "fan_in": 1.5})", "w", {"fan_in", "1.5"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "uniform", "a": true}})", "w", {"init.a", "true"});
  expect_error(with_second(R"({"name": 7, "shape": [2], "init": {"fn": "zeros"}})"), ErrorKind::invalid_argument,
               {"tensors[1]", "name", "7"});
  expect_error(with_second("3"), ErrorKind::invalid_argument, {"tensors[1]", "3"});
  expect_error(R"({"seed": -1, "tensors": []})", ErrorKind::invalid_argument, {"seed", "-1"});
  expect_error(R"({"seed": 1.5, "tensors": []})", ErrorKind::invalid_argument, {"seed", "1.5"});
  expect_error(R"({"seed": "1", "tensors": []})", ErrorKind::invalid_argument, {"seed", "\"1\""});
  expect_error(R"({"seed": 1, "tensors": {}})", ErrorKind::invalid_argument, {"tensors", "object"});
  expect_error(R"([1, 2])", ErrorKind::invalid_argument, {"array"});
}

TEST(ManifestErrors, UnknownKeys) {
  expect_error(R"({"seed": 1, "tensors": [], "sede": 2})", ErrorKind::invalid_argument, {"sede", "seed", "tensors"});
  expect_error(with_second(R"({"name": "fc1.bias", "shape": [2], "init": {"fn": "zeros"}, "fan_inn": 4})"),
               ErrorKind::invalid_argument, {"tensors[1]", "fan_inn", "fan_in", "fan_out", "stream"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "normal", "stdd": 0.1}})", "w", {"stdd", "std", "mean"});
  expect_tensor_error(R"({"name": "w", "shape": [2, 2], "init": {"fn": "kaiming_uniform", "scale": 2}})", "w",
                      {"scale", "mode", "nonlinearity"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "zeros", "val": 0}})", "w", {"val"});
  expect_tensor_error(R"({"name": "w", "shape": [2, 2], "init": {"fn": "xavier_normal", "a": 1}})", "w", {"\"a\""});
}

TEST(ManifestErrors, UnknownTensorKeyNamesTheTensor) {
  // The message of an unknown tensor key names the tensor (index and name), the key and the allowed keys.
  expect_tensor_error(R"({"name": "fc1.bias", "shape": [2], "init": {"fn": "zeros"}, "fan_inn": 4})", "fc1.bias",
                      {"fan_inn", "fan_in"});
  // Whatever the key order: the name may come after the unknown key.
  expect_tensor_error(R"({"fan_inn": 4, "shape": [2], "init": {"fn": "zeros"}, "name": "fc1.bias"})", "fc1.bias",
                      {"fan_inn"});
}

TEST(ManifestErrors, UnknownNamesListTheValidOnes) {
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "gaussian"}})", "w",
                      {"gaussian", "zeros", "ones", "constant", "uniform", "normal", "trunc_normal", "kaiming_uniform",
                       "kaiming_normal", "xavier_uniform", "xavier_normal", "lecun_uniform", "lecun_normal"});
  expect_tensor_error(R"({"name": "w", "shape": [2, 2], "init": {"fn": "kaiming_normal", "mode": "fan_avg"}})", "w",
                      {"fan_avg", "fan_in", "fan_out"});
  expect_tensor_error(R"({"name": "w", "shape": [2, 2], "init": {"fn": "kaiming_normal", "nonlinearity": "gelu"}})", "w",
                      {"gelu", "linear", "relu", "leaky_relu", "tanh", "sigmoid", "selu", "conv2d"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "dtype": "float32", "init": {"fn": "zeros"}})", "w",
                      {"float32", "f32", "f64", "bf16", "f16"});
}

TEST(ManifestErrors, MissingRequiredKeys) {
  expect_error(R"({"tensors": []})", ErrorKind::invalid_argument, {"seed"});
  expect_error(R"({"seed": 1})", ErrorKind::invalid_argument, {"tensors"});
  expect_error(with_second(R"({"shape": [2], "init": {"fn": "zeros"}})"), ErrorKind::invalid_argument,
               {"tensors[1]", "missing", "\"name\""});
  expect_tensor_error(R"({"name": "w", "init": {"fn": "zeros"}})", "w", {"missing", "\"shape\""});
  expect_tensor_error(R"({"name": "w", "shape": [2]})", "w", {"missing", "\"init\""});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"std": 1}})", "w", {"missing", "\"fn\""});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "constant"}})", "w", {"missing", "\"val\""});
  expect_error(with_second(R"({"name": "", "shape": [2], "init": {"fn": "zeros"}})"), ErrorKind::invalid_argument,
               {"tensors[1]", "empty"});
}

TEST(ManifestErrors, DuplicateJsonKeys) {
  expect_error(R"({"seed": 1, "seed": 2, "tensors": []})", ErrorKind::invalid_argument, {"\"seed\"", "twice"});
  expect_error(with_second(R"({"name": "w", "shape": [2], "shape": [3], "init": {"fn": "zeros"}})"),
               ErrorKind::invalid_argument, {"\"shape\"", "twice"});
  expect_error(with_second(R"({"name": "w", "shape": [2], "init": {"fn": "normal", "std": 0.1, "std": 0.1}})"),
               ErrorKind::invalid_argument, {"\"std\"", "twice"});
  // The same key in different objects is fine.
  EXPECT_NO_THROW((void)parse_manifest(R"({"seed": 1, "tensors": [
      {"name": "a", "shape": [2], "init": {"fn": "normal", "std": 0.1}},
      {"name": "b", "shape": [2], "init": {"fn": "normal", "std": 0.1}}]})"));
}

TEST(ManifestErrors, DuplicateJsonKeysNameTheTensor) {
  // Inside a tensor: the message names the tensor as well as the key.
  expect_tensor_error(R"({"name": "w", "shape": [2], "shape": [3], "init": {"fn": "zeros"}})", "w", {"\"shape\"", "twice"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "normal", "std": 0.1, "std": 0.2}})", "w",
                      {"\"std\"", "twice"});
}

TEST(ManifestErrors, NonFiniteAndHugeNumbers) {
  // 1e400 does not fit in a double: an error of the manifest (not an internal error).
  expect_error(with_second(R"({"name": "w", "shape": [2], "init": {"fn": "normal", "std": 1e400}})"), ErrorKind::parse,
               {"1e400"});
  expect_error(R"({"seed": 1e400, "tensors": []})", ErrorKind::parse, {"1e400"});
  expect_error(R"({"seed": 1, "tensors": [{"name": "w", "shape": [1e999], "init": {"fn": "zeros"}}]})", ErrorKind::parse,
               {"1e999"});
  // Finite but too wide for the dtype.
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "normal", "std": 1e300}})", "w", {"1e+300", "f32"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "constant", "val": 1e39}})", "w", {"1e+39", "f32"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "uniform", "a": -1.7e308, "b": 1.7e308}})", "w",
                      {"uniform"});
  // Integers beyond 64 bits are not valid dims, seeds or streams.
  expect_tensor_error(R"({"name": "w", "shape": [18446744073709551616], "init": {"fn": "zeros"}})", "w", {"shape[0]"});
  expect_tensor_error(R"({"name": "w", "shape": [9223372036854775808], "init": {"fn": "zeros"}})", "w",
                      {"shape[0]", "9223372036854775808"});
  expect_error(R"({"seed": 18446744073709551616, "tensors": []})", ErrorKind::invalid_argument, {"seed"});
}

TEST(ManifestErrors, HugeNumberMessageSaysWhereItIs) {
  // Reported like malformed JSON, so with where it is (line and column): the tensor is not known yet.
  expect_error(with_second(R"({"name": "w", "shape": [2], "init": {"fn": "normal", "std": 1e400}})"), ErrorKind::parse,
               {"1e400", "line 1", "column"});
  expect_error("{\"seed\": 1,\n \"tensors\": [\n{\"name\": \"w\", \"shape\": [2], \"init\": {\"fn\": \"constant\", \"val\": -1e400}}]}",
               ErrorKind::parse, {"1e400", "line 3", "column"});
}

TEST(ManifestErrors, BadParameters) {
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "normal", "std": -0.5}})", "w", {"std", "-0.5"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "trunc_normal", "std": -0.5}})", "w", {"std", "-0.5"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "uniform", "a": 2, "b": 1}})", "w", {"a=2", "b=1"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "trunc_normal", "a": 1, "b": 1}})", "w", {"a=1", "b=1"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "trunc_normal", "a": 3, "b": -3}})", "w", {"a=3", "b=-3"});
  expect_tensor_error(R"({"name": "w", "shape": [2], "init": {"fn": "trunc_normal", "std": 0}})", "w", {"std"});
  // a == b is a valid (constant) uniform; std == 0 a valid (constant) normal.
  EXPECT_NO_THROW((void)parse_manifest(with_one(R"({"name": "w", "shape": [2], "init": {"fn": "uniform", "a": 1, "b": 1}})")));
  EXPECT_NO_THROW((void)parse_manifest(with_one(R"({"name": "w", "shape": [2], "init": {"fn": "normal", "std": 0}})")));
}

TEST(ManifestErrors, ShapesAndFans) {
  expect_tensor_error(R"({"name": "w", "shape": [4, -3], "init": {"fn": "zeros"}})", "w", {"shape[1]", "-3"});
  // 2^62 * 4 elements overflow a signed 64-bit count.
  expect_tensor_error(R"({"name": "w", "shape": [4611686018427387904, 4], "init": {"fn": "zeros"}})", "w",
                      {"shape", "4611686018427387904"});
  expect_tensor_error(R"({"name": "w", "shape": [4, 4], "init": {"fn": "kaiming_uniform"}, "fan_in": 0})", "w",
                      {"fan_in", "0", "positive"});
  expect_tensor_error(R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "fan_out": 0})", "w", {"fan_out", "0"});
  expect_tensor_error(R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "fan_out": -2})", "w", {"fan_out", "-2"});
  // A 1-D tensor cannot derive fans: a fan-based initializer needs them explicitly.
  for (const char* fn : {"kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal", "lecun_uniform",
                         "lecun_normal"}) {
    const std::string bad = std::string(R"({"name": "bias", "shape": [16], "init": {"fn": ")") + fn + "\"}}";
    expect_tensor_error(bad, "bias", {fn, "fan_in", "give"});
  }
  expect_tensor_error(R"({"name": "bias", "shape": [16], "init": {"fn": "kaiming_normal", "mode": "fan_out"}, "fan_in": 16})",
                      "bias", {"kaiming_normal", "fan_out"});
  // With the fan given, it loads.
  EXPECT_NO_THROW((void)parse_manifest(
      with_one(R"({"name": "bias", "shape": [16], "init": {"fn": "kaiming_normal", "mode": "fan_out"}, "fan_out": 16})")));
  // A scalar is rank 0: no fans either.
  expect_tensor_error(R"({"name": "s", "shape": [], "init": {"fn": "lecun_uniform"}})", "s", {"fan_in"});
}

TEST(ManifestErrors, F16RangeOverflow) {
  expect_tensor_error(R"({"name": "h", "shape": [2], "dtype": "f16", "init": {"fn": "constant", "val": 70000}})", "h",
                      {"70000", "f16"});
  expect_tensor_error(R"({"name": "h", "shape": [2], "dtype": "f16", "init": {"fn": "uniform", "a": 0, "b": 1e5}})", "h",
                      {"b=1e+05", "f16"});
  expect_tensor_error(R"({"name": "h", "shape": [2], "dtype": "f16", "init": {"fn": "normal", "std": 10000}})", "h",
                      {"10000", "f16"});
  // The same parameters are fine in f32.
  EXPECT_NO_THROW((void)parse_manifest(with_one(R"({"name": "h", "shape": [2], "init": {"fn": "constant", "val": 70000}})")));
  EXPECT_NO_THROW((void)parse_manifest(
      with_one(R"({"name": "h", "shape": [2], "dtype": "f16", "init": {"fn": "constant", "val": 65504}})")));
}

TEST(ManifestErrors, DuplicateNamesAndStreams) {
  expect_error(R"({"seed": 1, "tensors": [
      {"name": "a", "shape": [2], "init": {"fn": "zeros"}},
      {"name": "b", "shape": [2], "init": {"fn": "zeros"}},
      {"name": "a", "shape": [3], "init": {"fn": "ones"}}]})",
               ErrorKind::invalid_argument, {"\"a\"", "tensors[0]", "tensors[2]", "twice"});
  expect_error(R"({"seed": 1, "tensors": [
      {"name": "a", "shape": [2], "init": {"fn": "zeros"}, "stream": 7},
      {"name": "b", "shape": [2], "init": {"fn": "zeros"}, "stream": 7}]})",
               ErrorKind::invalid_argument, {"tensors[0]", "\"a\"", "tensors[1]", "\"b\"", "stream 7"});
  // An explicit stream equal to another tensor's name hash.
  const std::uint64_t hash_a = stream_from_name("a");
  expect_error(R"({"seed": 1, "tensors": [
      {"name": "a", "shape": [2], "init": {"fn": "zeros"}},
      {"name": "b", "shape": [2], "init": {"fn": "zeros"}, "stream": )" + std::to_string(hash_a) + "}]}",
               ErrorKind::invalid_argument, {"tensors[0]", "\"a\"", "tensors[1]", "\"b\"", std::to_string(hash_a)});
  // Renaming the stream resolves it.
  EXPECT_NO_THROW((void)parse_manifest(R"({"seed": 1, "tensors": [
      {"name": "a", "shape": [2], "init": {"fn": "zeros"}},
      {"name": "b", "shape": [2], "init": {"fn": "zeros"}, "stream": )" + std::to_string(hash_a + 1) + "}]}"));
}

TEST(ManifestErrors, MessagesNameTheTensorAndTheValue) {
  // One representative per check, with an unusual name so the name cannot appear by accident.
  const std::string message =
      expect_tensor_error(R"({"name": "blocks.7.attn.qkv", "shape": [2], "init": {"fn": "normal", "std": -0.125}})",
                          "blocks.7.attn.qkv", {"-0.125"});
  EXPECT_THAT(message, HasSubstr("normal"));
}

// ---------------------------------------------------------------------------------------------
// Zero-element tensors

TEST(Manifest, ZeroElementTensorWithKaimingIsANoOp) {
  const Manifest m = parse_manifest(R"({"seed": 1, "tensors": [
      {"name": "a", "shape": [5, 0], "init": {"fn": "kaiming_uniform"}},
      {"name": "b", "shape": [0], "init": {"fn": "kaiming_normal"}},
      {"name": "c", "shape": [0, 7], "init": {"fn": "xavier_uniform"}}]})");
  for (const auto& t : m.tensors) {
    EXPECT_TRUE(t.empty) << t.name;
    EXPECT_EQ(element_count(t.shape), 0) << t.name;
  }
}

TEST(Manifest, ZeroElementTensorWithHugeOtherDimsIsANoOp) {
  // Colossal-AI returns before reading any fan when 0 is in the shape, so fans that would overflow do not matter.
  EXPECT_NO_THROW((void)parse_manifest(
      with_one(R"({"name": "z", "shape": [0, 4611686018427387904, 4], "init": {"fn": "zeros"}})")));
  EXPECT_NO_THROW((void)parse_manifest(
      with_one(R"({"name": "z", "shape": [0, 4611686018427387904, 4], "init": {"fn": "kaiming_uniform"}})")));
}

TEST(ManifestErrors, ZeroElementTensorParametersAreStillChecked) {
  expect_tensor_error(R"({"name": "z", "shape": [0, 3], "init": {"fn": "normal", "std": -1}})", "z", {"std", "-1"});
  expect_tensor_error(R"({"name": "z", "shape": [0], "init": {"fn": "uniform", "a": 1, "b": 0}})", "z", {"a=1"});
  expect_tensor_error(R"({"name": "z", "shape": [0], "dtype": "f16", "init": {"fn": "constant", "val": 1e6}})", "z",
                      {"f16"});
  expect_tensor_error(R"({"name": "z", "shape": [0, 3], "init": {"fn": "kaiming_uniform"}, "fan_in": 0})", "z",
                      {"fan_in"});
}

// ---------------------------------------------------------------------------------------------
// Canonical form and digest

TEST(Canonical, IndependentOfKeyOrderWhitespaceAndTensorOrder) {
  const Manifest a = parse_manifest(kExample);
  const Manifest b = parse_manifest(R"({"tensors":[{"shape":[768],"init":{"fn":"ones"},"name":"ln.weight","dtype":"f32"},
{"init":{"std":0.02,"fn":"normal"},"dtype":"bf16","name":"wte","shape":[50257,768]},
{"fan_in":768,"init":{"scale":1,"a":1,"fn":"xavier_uniform"},"dtype":"f32","shape":[3072],"name":"fc1.bias"},
{"dtype":"f32","init":{"nonlinearity":"leaky_relu","mode":"fan_in","a":2.23606797749979,"fn":"kaiming_uniform"},
"shape":[3072,768],"name":"fc1.weight"}],"seed":42})");
  EXPECT_EQ(canonical_spec_json(a), canonical_spec_json(b));
  EXPECT_EQ(manifest_digest(a), manifest_digest(b));
  // Defaults written out or left implicit, and equal numbers written differently, are the same spec.
  const Manifest c = parse_manifest(R"({"seed": 42, "tensors": [
    {"name": "fc1.weight", "shape": [3072, 768], "init": {"fn": "kaiming_uniform", "a": 2.23606797749979}},
    {"name": "fc1.bias", "shape": [3072], "init": {"fn": "xavier_uniform", "a": 1.0, "scale": 1e0, "gain": 1}, "fan_in": 768},
    {"name": "wte", "shape": [50257, 768], "dtype": "bf16", "init": {"fn": "normal", "std": 2e-2, "mean": 0}},
    {"name": "ln.weight", "shape": [768], "init": {"fn": "ones"}, "stream": )" +
                                    std::to_string(stream_from_name("ln.weight")) + "}]}");
  EXPECT_EQ(canonical_spec_json(a), canonical_spec_json(c));
}

TEST(Canonical, IsJsonWithTheSpec) {
  const std::string text = canonical_spec_json(parse_manifest(kExample));
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_THAT(text, HasSubstr("\"seed\":42"));
  EXPECT_THAT(text, HasSubstr("shardinit-stream-v1"));
  // Sorted by name: fc1.bias, fc1.weight, ln.weight, wte.
  const auto p1 = text.find("\"fc1.bias\""), p2 = text.find("\"fc1.weight\""), p3 = text.find("\"ln.weight\""),
             p4 = text.find("\"wte\"");
  ASSERT_NE(p1, std::string::npos);
  ASSERT_NE(p4, std::string::npos);
  EXPECT_LT(p1, p2);
  EXPECT_LT(p2, p3);
  EXPECT_LT(p3, p4);
}

TEST(Canonical, ChangesWithEverythingThatDeterminesValues) {
  const std::string base = R"({"seed": 5, "tensors": [
    {"name": "w", "shape": [6, 4], "dtype": "f32", "init": {"fn": "xavier_uniform", "gain": 1.5}},
    {"name": "b", "shape": [6], "dtype": "f32", "init": {"fn": "kaiming_normal", "nonlinearity": "relu"}, "fan_in": 4},
    {"name": "e", "shape": [3, 3], "init": {"fn": "normal", "std": 0.02}, "stream": 99}]})";
  const Manifest m = parse_manifest(base);
  const std::string spec = canonical_spec_json(m);
  const std::string digest = manifest_digest(m);
  EXPECT_TRUE(std::regex_match(digest, std::regex("sha256:[0-9a-f]{64}"))) << digest;
  EXPECT_EQ(digest, "sha256:" + Sha256::hex(spec));

  const auto variant = [&](const std::string& from, const std::string& to) {
    std::string text = base;
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    return parse_manifest(text);
  };
  const std::pair<const char*, const char*> changes[] = {
      {R"("seed": 5)", R"("seed": 6)"},
      {R"("shape": [6, 4])", R"("shape": [6, 5])"},
      {R"("shape": [6])", R"("shape": [7])"},
      {R"("shape": [6, 4], "dtype": "f32")", R"("shape": [6, 4], "dtype": "bf16")"},
      {R"("shape": [6], "dtype": "f32")", R"("shape": [6], "dtype": "f64")"},
      {R"("gain": 1.5)", R"("gain": 1.25)"},
      {R"("nonlinearity": "relu")", R"("nonlinearity": "tanh")"},
      {R"("std": 0.02)", R"("std": 0.0200001)"},
      {R"("fn": "normal", "std": 0.02)", R"("fn": "trunc_normal", "std": 0.02)"},
      {R"("fan_in": 4)", R"("fan_in": 5)"},
      {R"("xavier_uniform", "gain": 1.5})", R"("xavier_uniform", "gain": 1.5}, "fan_out": 7)"},
      {R"("stream": 99)", R"("stream": 100)"},
      {R"("name": "e")", R"("name": "f")"},
  };
  for (const auto& [from, to] : changes) {
    const Manifest changed = variant(from, to);
    EXPECT_NE(canonical_spec_json(changed), spec) << from << " -> " << to;
    EXPECT_NE(manifest_digest(changed), digest) << from << " -> " << to;
  }
  // Dropping the explicit stream changes the stream (to the name hash) and so the spec.
  const Manifest no_stream = variant(R"(, "stream": 99)", "");
  EXPECT_NE(manifest_digest(no_stream), digest);
}

TEST(Canonical, AddingOrRemovingATensorChangesTheDigest) {
  const Manifest a = parse_manifest(kExample);
  Manifest b = a;
  b.tensors.pop_back();
  EXPECT_NE(manifest_digest(a), manifest_digest(b));
}

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4 examples)

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(Sha256::hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256::hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(Sha256::hex(std::string(1'000'000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

std::string to_hex(const std::array<std::uint8_t, 32>& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (const auto b : digest) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

TEST(Sha256, IncrementalUpdatesMatchOneShot) {
  // One million 'a' fed in pieces of awkward sizes, crossing block boundaries in every way.
  Sha256 h;
  std::size_t fed = 0;
  std::size_t piece = 1;
  const std::string chunk(1000, 'a');
  while (fed < 1'000'000) {
    const std::size_t n = std::min({piece, chunk.size(), 1'000'000 - fed});
    h.update(std::string_view(chunk).substr(0, n));
    fed += n;
    piece = piece * 7 % 131 + 1;
  }
  EXPECT_EQ(to_hex(h.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Lengths around the padding boundary, with known answers (sha256sum), split at every point.
  const std::pair<std::size_t, const char*> cases[] = {
      {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
      {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
      {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
      {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
      {65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"},
      {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
      {120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"},
  };
  for (const auto& [length, want] : cases) {
    const std::string text(length, 'x');
    EXPECT_EQ(Sha256::hex(text), want) << length << " bytes";
    for (std::size_t split = 0; split <= length; ++split) {
      Sha256 s;
      s.update(std::string_view(text).substr(0, split));
      s.update(std::string_view(text).substr(split));
      ASSERT_EQ(to_hex(s.finish()), want) << length << " split at " << split;
    }
  }
}

}  // namespace
}  // namespace shardinit
