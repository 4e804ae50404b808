// Layouts in the manifest: "mesh", "parallel" and per-tensor "layout" (presets and {"shard": ...}),
// their errors, the (in, out) fans of the Colossal-AI Linear presets, layouts never changing values
// (canonical spec and digest), and manifest_mesh.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <stdexcept>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/manifest/manifest.hpp"

namespace shardinit {
namespace {

using ::testing::HasSubstr;

const ManifestTensor& tensor(const Manifest& m, const std::string& name) {
  for (const auto& t : m.tensors) {
    if (t.name == name) return t;
  }
  throw std::runtime_error("no tensor " + name);
}

// A preset's layout over the tensor-parallel axes, where it sits on the job's mesh (after the data
// and pipeline axes, in the default order).
TensorLayout on_job(const Manifest& m, std::vector<std::vector<int>> tensor_axes) {
  return topology_layout(*m.parallel, TensorLayout(std::move(tensor_axes)));
}

// {"seed": 3, <top>, "tensors": [<tensors>]}
std::string manifest(const std::string& top, const std::string& tensors) {
  return R"({"seed": 3, )" + (top.empty() ? std::string() : top + ", ") + R"("tensors": [)" + tensors + "]}";
}

std::string expect_error(const std::string& json, std::initializer_list<std::string> parts) {
  try {
    (void)parse_manifest(json);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << "message: " << e.what() << "\ninput: " << json;
    for (const auto& part : parts) EXPECT_THAT(std::string(e.what()), HasSubstr(part)) << "input: " << json;
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << json;
  return {};
}

// An error in tensors[1] (tensors[0] is fine): the message names it by index and name.
std::string expect_tensor_error(const std::string& top, const std::string& bad_tensor, const std::string& name,
                                std::initializer_list<std::string> parts) {
  const std::string json = manifest(top, R"({"name": "fine", "shape": [4], "init": {"fn": "zeros"}}, )" + bad_tensor);
  const std::string message = expect_error(json, parts);
  EXPECT_THAT(message, HasSubstr("tensors[1]")) << json;
  EXPECT_THAT(message, HasSubstr("\"" + name + "\"")) << json;
  return message;
}

const std::string kParallel2d = R"("parallel": {"tensor": {"mode": "2d", "size": 4}})";

// ---------------------------------------------------------------------------------------------
// Presets resolve to layouts

TEST(ManifestLayouts, PresetsResolve) {
  const Manifest m = parse_manifest(manifest(kParallel2d, R"(
    {"name": "w", "shape": [8, 12], "init": {"fn": "normal"}, "layout": "linear"},
    {"name": "b", "shape": [12], "init": {"fn": "zeros"}, "layout": "linear_bias"},
    {"name": "ln", "shape": [16], "init": {"fn": "ones"}, "layout": "layernorm"},
    {"name": "pos", "shape": [5, 3], "init": {"fn": "zeros"}, "layout": "replicate"},
    {"name": "plain", "shape": [5, 3], "init": {"fn": "zeros"}})"));
  ASSERT_TRUE(m.parallel.has_value());
  EXPECT_EQ(m.parallel->tensor.mode, TensorParallelMode::two_d);
  EXPECT_EQ(m.parallel->tensor.size, 4);
  EXPECT_EQ(m.parallel->tensor.depth, 1);
  EXPECT_FALSE(m.mesh.has_value());
  EXPECT_EQ(tensor(m, "w").layout, on_job(m, {{0}, {1}}));
  EXPECT_EQ(tensor(m, "w").layout_name, "linear");
  EXPECT_EQ(tensor(m, "b").layout, on_job(m, {{1, 0}}));
  EXPECT_EQ(tensor(m, "b").layout_name, "linear_bias");
  EXPECT_EQ(tensor(m, "ln").layout, on_job(m, {{1, 0}}));
  EXPECT_EQ(tensor(m, "pos").layout, TensorLayout::replicated(2));
  EXPECT_EQ(tensor(m, "pos").layout_name, "replicate");
  EXPECT_EQ(tensor(m, "plain").layout, TensorLayout::replicated(2));
  EXPECT_EQ(tensor(m, "plain").layout_name, "replicate");
}

TEST(ManifestLayouts, PresetsOfEveryMode) {
  {
    const Manifest m = parse_manifest(manifest(R"("parallel": {"tensor": {"mode": "1d", "size": 2}})", R"(
      {"name": "col", "shape": [8, 6], "init": {"fn": "zeros"}, "layout": "linear_col"},
      {"name": "row", "shape": [8, 6], "init": {"fn": "zeros"}, "layout": "linear_row"},
      {"name": "rb", "shape": [8], "init": {"fn": "zeros"}, "layout": "linear_row_bias"},
      {"name": "emb", "shape": [10, 4], "init": {"fn": "zeros"}, "layout": "embedding"})"));
    EXPECT_EQ(m.parallel->tensor.mode, TensorParallelMode::one_d);
    EXPECT_EQ(tensor(m, "col").layout, on_job(m, {{0}, {}}));
    EXPECT_EQ(tensor(m, "row").layout, on_job(m, {{}, {0}}));
    EXPECT_EQ(tensor(m, "rb").layout, TensorLayout::replicated(1));
    EXPECT_EQ(tensor(m, "rb").layout_name, "linear_row_bias");
    EXPECT_EQ(tensor(m, "emb").layout, on_job(m, {{}, {0}}));
  }
  {
    const Manifest m = parse_manifest(manifest(R"("parallel": {"tensor": {"mode": "2.5d", "size": 8, "depth": 2}})", R"(
      {"name": "w", "shape": [4, 6], "init": {"fn": "zeros"}, "layout": "linear"},
      {"name": "b", "shape": [6], "init": {"fn": "zeros"}, "layout": "linear_bias"})"));
    EXPECT_EQ(m.parallel->tensor.mode, TensorParallelMode::two_p5_d);
    EXPECT_EQ(m.parallel->tensor.size, 8);
    EXPECT_EQ(m.parallel->tensor.depth, 2);
    EXPECT_EQ(tensor(m, "w").layout, on_job(m, {{1}, {2}}));
    EXPECT_EQ(tensor(m, "b").layout, on_job(m, {{2}}));
  }
  {
    const Manifest m = parse_manifest(manifest(R"("parallel": {"tensor": {"mode": "3d", "size": 8}})", R"(
      {"name": "w", "shape": [8, 6], "init": {"fn": "zeros"}, "layout": "linear"},
      {"name": "w2", "shape": [8, 6], "init": {"fn": "zeros"}, "layout": "linear_swapped"},
      {"name": "ln", "shape": [6], "init": {"fn": "ones"}, "layout": "layernorm_swapped"},
      {"name": "odd", "shape": [6, 6], "init": {"fn": "zeros"}, "layout": {"shard": {"1": [2, 0]}}})"));
    EXPECT_EQ(tensor(m, "w").layout, on_job(m, {{0, 2}, {1}}));
    EXPECT_EQ(tensor(m, "w2").layout, on_job(m, {{1, 2}, {0}}));
    EXPECT_EQ(tensor(m, "ln").layout, on_job(m, {{1}}));
    // {"shard": ...} works with "parallel" too, over the job's mesh: dp, pp and the 3 tensor axes.
    EXPECT_EQ(tensor(m, "odd").layout, (TensorLayout{{{}, {2, 0}}}));
    EXPECT_EQ(tensor(m, "odd").layout_name, "custom");
  }
}

// ---------------------------------------------------------------------------------------------
// {"shard": ...}

TEST(ManifestLayouts, ShardLayouts) {
  const Manifest m = parse_manifest(manifest(R"("mesh": [2, 2, 2])", R"(
    {"name": "a", "shape": [64, 48], "init": {"fn": "normal"}, "layout": {"shard": {"0": [0, 2], "1": [1]}}},
    {"name": "b", "shape": [5, 7, 3], "init": {"fn": "normal"}, "layout": {"shard": {"2": [1]}}},
    {"name": "c", "shape": [5, 7], "init": {"fn": "normal"}, "layout": {"shard": {}}},
    {"name": "d", "shape": [5, 7], "init": {"fn": "normal"}, "layout": {"shard": {"1": []}}},
    {"name": "e", "shape": [5], "init": {"fn": "normal"}, "layout": {"shard": {"0": [2, 1, 0]}}})"));
  ASSERT_TRUE(m.mesh.has_value());
  EXPECT_EQ(*m.mesh, (std::vector<int>{2, 2, 2}));
  EXPECT_FALSE(m.parallel.has_value());
  EXPECT_EQ(tensor(m, "a").layout, (TensorLayout{{{0, 2}, {1}}}));
  EXPECT_EQ(tensor(m, "a").layout_name, "custom");
  EXPECT_EQ(tensor(m, "b").layout, (TensorLayout{{{}, {}, {1}}}));
  EXPECT_EQ(tensor(m, "c").layout, TensorLayout::replicated(2));
  EXPECT_EQ(tensor(m, "d").layout, TensorLayout::replicated(2));
  EXPECT_EQ(tensor(m, "e").layout, (TensorLayout{{{2, 1, 0}}}));  // uneven splits are fine in custom layouts
  // Without "mesh" the mesh is [world]: one axis.
  const Manifest one = parse_manifest(manifest("", R"(
    {"name": "a", "shape": [6, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"1": [0]}}},
    {"name": "r", "shape": [6, 4], "init": {"fn": "zeros"}, "layout": "replicate"})"));
  EXPECT_EQ(tensor(one, "a").layout, (TensorLayout{{{}, {0}}}));
  EXPECT_EQ(tensor(one, "r").layout, TensorLayout::replicated(2));
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(ManifestLayouts, PresetWithoutParallel) {
  expect_tensor_error("", R"({"name": "fc.w", "shape": [8, 8], "init": {"fn": "zeros"}, "layout": "linear"})", "fc.w",
                      {"\"linear\"", "\"parallel\"", "layout"});
  expect_tensor_error(R"("mesh": [2, 2])",
                      R"({"name": "fc.w", "shape": [8, 8], "init": {"fn": "zeros"}, "layout": "linear_col"})", "fc.w",
                      {"\"linear_col\"", "\"parallel\""});
}

TEST(ManifestLayouts, UnknownPreset) {
  expect_tensor_error(
      kParallel2d, R"({"name": "fc.w", "shape": [8, 8], "init": {"fn": "zeros"}, "layout": "linear_col"})", "fc.w",
      {"\"linear_col\"", "2d", "linear", "linear_bias", "layernorm", "replicate"});
  expect_tensor_error(kParallel2d, R"({"name": "fc.w", "shape": [8, 8], "init": {"fn": "zeros"}, "layout": "Linear"})",
                      "fc.w", {"\"Linear\""});
  // Not a string or an object.
  expect_tensor_error(kParallel2d, R"({"name": "fc.w", "shape": [8, 8], "init": {"fn": "zeros"}, "layout": 3})", "fc.w",
                      {"layout", "number 3"});
  expect_tensor_error(kParallel2d, R"({"name": "fc.w", "shape": [8, 8], "init": {"fn": "zeros"}, "layout": ["linear"]})",
                      "fc.w", {"layout", "array"});
}

TEST(ManifestLayouts, PresetShapeErrors) {
  // Wrong rank, indivisible dimension: Colossal-AI's requirement, naming the tensor.
  expect_tensor_error(kParallel2d, R"({"name": "fc.b", "shape": [8, 8], "init": {"fn": "zeros"}, "layout": "linear_bias"})",
                      "fc.b", {"linear_bias", "1-D", "[8, 8]"});
  expect_tensor_error(kParallel2d, R"({"name": "fc.b", "shape": [6], "init": {"fn": "zeros"}, "layout": "linear_bias"})",
                      "fc.b", {"Colossal-AI requires", "[6]", "4 parts"});
}

TEST(ManifestLayouts, ShardErrors) {
  const std::string mesh = R"("mesh": [2, 2])";
  // A dimension out of range or not a number.
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"2": [0]}}})",
                      "w", {"\"2\"", "[4, 4]"});
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"x": [0]}}})",
                      "w", {"\"x\""});
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"-1": [0]}}})",
                      "w", {"\"-1\""});
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"1x": [0]}}})",
                      "w", {"\"1x\""});
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"": [0]}}})",
                      "w", {"\"\""});
  expect_tensor_error(mesh, R"({"name": "s", "shape": [], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [0]}}})", "s",
                      {"\"0\"", "scalar"});
  // Unknown mesh axis.
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [2]}}})",
                      "w", {"mesh axis 2", "2 axes"});
  expect_tensor_error("", R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [1]}}})",
                      "w", {"mesh axis 1", "1 axis"});
  // Not a mesh axis at all.
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [-1]}}})",
                      "w", {"-1", "negative"});
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": ["1"]}}})",
                      "w", {"mesh axis \"1\" does not exist: the mesh's axes have no names"});
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": 1}}})",
                      "w", {"array of mesh axes", "number 1"});
  // Axis used twice, in one dimension or in two.
  expect_tensor_error(mesh,
                      R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [1], "1": [1]}}})",
                      "w", {"mesh axis 1", "twice"});
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [0, 0]}}})",
                      "w", {"mesh axis 0", "twice"});
  // Malformed objects.
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"split": {"0": [0]}}})",
                      "w", {"\"split\""});
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {}})", "w",
                      {"\"shard\""});
  expect_tensor_error(mesh, R"({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": {"shard": [0]}})", "w",
                      {"shard", "array"});
}

TEST(ManifestLayouts, MeshAndParallelErrors) {
  const std::string t = R"({"name": "a", "shape": [4], "init": {"fn": "zeros"}})";
  expect_error(manifest(R"("mesh": [4], "parallel": {"tensor": {"mode": "1d", "size": 4}})", t),
               {"\"mesh\"", "\"parallel\"", "not both"});
  // Bad mesh values.
  expect_error(manifest(R"("mesh": [2, 0])", t), {"mesh[1]", "got 0"});
  expect_error(manifest(R"("mesh": [-2])", t), {"mesh[0]", "-2", "negative"});
  expect_error(manifest(R"("mesh": 4)", t), {"mesh", "number 4"});
  expect_error(manifest(R"("mesh": [])", t), {"mesh", "non-empty"});
  expect_error(manifest(R"("mesh": ["2"])", t), {"mesh[0]", "string \"2\""});
  expect_error(manifest(R"("mesh": [2.5])", t), {"mesh[0]", "2.5"});
  expect_error(manifest(R"("mesh": [4294967296])", t), {"mesh[0]", "4294967296"});
  expect_error(manifest(R"("mesh": [65536, 65536])", t), {"mesh", "too many ranks"});
  // "parallel": unknown keys, missing keys, bad values.
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "1d", "size": 2}, "pipelines": 2})", t),
               {"parallel", "\"pipelines\""});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "2.5d", "size": 8, "dept": 2}})", t),
               {"parallel.tensor", "\"dept\""});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "2d"}})", t), {"parallel.tensor", "\"size\""});
  expect_error(manifest(R"("parallel": {"tensor": {"size": 4}})", t), {"parallel.tensor", "\"mode\""});
  expect_error(manifest(R"("parallel": 4)", t), {"parallel", "number 4"});
  expect_error(manifest(R"("parallel": {"tensor": [1]})", t), {"parallel.tensor", "array"});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "4d", "size": 4}})", t), {"parallel.tensor.mode", "\"4d\""});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": 2, "size": 4}})", t), {"parallel.tensor.mode", "number 2"});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "1d", "size": 0}})", t), {"parallel.tensor.size", "got 0"});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "1d", "size": -4}})", t), {"parallel.tensor.size", "-4"});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "1d", "size": "4"}})", t), {"parallel.tensor.size", "string"});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "2.5d", "size": 8, "depth": 0}})", t),
               {"parallel.tensor.depth", "got 0"});
  // Impossible configurations.
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "2d", "size": 8}})", t), {"parallel.tensor", "square", "8"});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "3d", "size": 9}})", t), {"parallel.tensor", "cub", "9"});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "2.5d", "size": 12, "depth": 2}})", t),
               {"parallel.tensor", "12", "2"});
  expect_error(manifest(R"("parallel": {"tensor": {"mode": "2d", "size": 4, "depth": 2}})", t),
               {"parallel.tensor", "depth 2"});
}

// ---------------------------------------------------------------------------------------------
// Fans

TEST(ManifestLayouts, LinearPresetsReadInOutFans) {
  for (const std::string& parallel :
       {kParallel2d, std::string(R"("parallel": {"tensor": {"mode": "2.5d", "size": 8, "depth": 2}})"),
        std::string(R"("parallel": {"tensor": {"mode": "3d", "size": 8}})")}) {
    const bool three_d = parallel.find("3d") != std::string::npos;
    // [in, out] = [8, 12]; for 3d the rows split p^2 = 4 ways, the columns p = 2 ways.
    const Manifest m = parse_manifest(manifest(parallel, std::string(R"(
      {"name": "w", "shape": [8, 12], "init": {"fn": "kaiming_uniform"}, "layout": "linear"},
      {"name": "x", "shape": [8, 12], "init": {"fn": "xavier_normal"}, "layout": "linear"},
      {"name": "e", "shape": [8, 12], "init": {"fn": "kaiming_uniform"}, "layout": "linear", "fan_in": 5},
      {"name": "eo", "shape": [8, 12], "init": {"fn": "xavier_uniform"}, "layout": "linear", "fan_out": 7},
      {"name": "r", "shape": [8, 12], "init": {"fn": "kaiming_uniform"}, "layout": "replicate"},
      {"name": "rx", "shape": [8, 12], "init": {"fn": "xavier_normal"}},
      {"name": "k", "shape": [8, 12], "init": {"fn": "kaiming_normal", "mode": "fan_out"}, "layout": "linear"})") +
                                                   (three_d ? R"(,
      {"name": "s", "shape": [8, 12], "init": {"fn": "kaiming_uniform"}, "layout": "linear_swapped"})"
                                                            : "")));
    SCOPED_TRACE(parallel);
    EXPECT_EQ(tensor(m, "w").fans.fan_in, std::optional<Index>(8));  // in = shape[0]
    EXPECT_FALSE(tensor(m, "w").fans.fan_out.has_value());           // kaiming fan_in mode reads only fan_in
    EXPECT_EQ(tensor(m, "x").fans.fan_in, std::optional<Index>(8));
    EXPECT_EQ(tensor(m, "x").fans.fan_out, std::optional<Index>(12));
    EXPECT_EQ(tensor(m, "k").fans.fan_out, std::optional<Index>(12));
    // Explicit fans win.
    EXPECT_EQ(tensor(m, "e").fans.fan_in, std::optional<Index>(5));
    EXPECT_EQ(tensor(m, "eo").fans.fan_in, std::optional<Index>(8));
    EXPECT_EQ(tensor(m, "eo").fans.fan_out, std::optional<Index>(7));
    // "replicate" (or no layout): PyTorch's reading of (d0, d1) as (out, in).
    EXPECT_EQ(tensor(m, "r").fans.fan_in, std::optional<Index>(12));
    EXPECT_EQ(tensor(m, "rx").fans.fan_in, std::optional<Index>(12));
    EXPECT_EQ(tensor(m, "rx").fans.fan_out, std::optional<Index>(8));
    if (three_d) { EXPECT_EQ(tensor(m, "s").fans.fan_in, std::optional<Index>(8)); }
    // The distribution follows the fans: the (in, out) weight draws like a plain tensor with
    // explicit fans in = 8, out = 12.
    const Manifest plain = parse_manifest(manifest("", R"(
      {"name": "w", "shape": [8, 12], "init": {"fn": "kaiming_uniform"}, "fan_in": 8, "fan_out": 12},
      {"name": "x", "shape": [8, 12], "init": {"fn": "xavier_normal"}, "fan_in": 8, "fan_out": 12})"));
    EXPECT_EQ(describe(tensor(m, "w").distribution), describe(tensor(plain, "w").distribution));
    EXPECT_EQ(describe(tensor(m, "x").distribution), describe(tensor(plain, "x").distribution));
    EXPECT_NE(describe(tensor(m, "w").distribution), describe(tensor(m, "r").distribution));
    // kaiming_uniform(a=0): bound sqrt(2) * sqrt(3 / fan_in) = sqrt(6 / 8).
    const auto* u = std::get_if<Uniform>(&tensor(m, "w").distribution);
    ASSERT_NE(u, nullptr);
    EXPECT_NEAR(u->b, std::sqrt(6.0 / 8.0), 1e-12);
    EXPECT_NEAR(u->a, -std::sqrt(6.0 / 8.0), 1e-12);
  }
}

TEST(ManifestLayouts, OtherPresetsKeepPyTorchFans) {
  // 1d weights are stored (out, in): PyTorch's reading.
  const Manifest m = parse_manifest(manifest(R"("parallel": {"tensor": {"mode": "1d", "size": 2}})", R"(
    {"name": "col", "shape": [12, 8], "init": {"fn": "kaiming_uniform"}, "layout": "linear_col"},
    {"name": "row", "shape": [12, 8], "init": {"fn": "xavier_normal"}, "layout": "linear_row"})"));
  EXPECT_EQ(tensor(m, "col").fans.fan_in, std::optional<Index>(8));
  EXPECT_EQ(tensor(m, "row").fans.fan_in, std::optional<Index>(8));
  EXPECT_EQ(tensor(m, "row").fans.fan_out, std::optional<Index>(12));
  // A custom shard layout on a plain mesh: PyTorch's reading.
  const Manifest s = parse_manifest(manifest(R"("mesh": [2, 2])", R"(
    {"name": "w", "shape": [8, 12], "init": {"fn": "kaiming_uniform"}, "layout": {"shard": {"0": [0], "1": [1]}}})"));
  EXPECT_EQ(tensor(s, "w").fans.fan_in, std::optional<Index>(12));
}

// ---------------------------------------------------------------------------------------------
// Layouts never change values

TEST(ManifestLayouts, LayoutDoesNotChangeTheSpec) {
  // The same tensors (explicit fans where a fan is read) under no mesh, a plain mesh with shards and
  // every kind of "parallel".
  const auto tensors = [](const std::string& w_layout, const std::string& b_layout, const std::string& n_layout) {
    const auto with = [](const std::string& layout) { return layout.empty() ? std::string() : R"(, "layout": )" + layout; };
    return R"({"name": "fc.weight", "shape": [8, 16], "dtype": "bf16", "init": {"fn": "kaiming_uniform", "a": 2.23606797749979},
               "fan_in": 8, "fan_out": 16)" + with(w_layout) + R"(},
              {"name": "fc.bias", "shape": [16], "init": {"fn": "xavier_uniform", "a": 1, "scale": 1}, "fan_in": 8)" +
           with(b_layout) + R"(},
              {"name": "ln.weight", "shape": [16], "init": {"fn": "ones"})" + with(n_layout) + R"(},
              {"name": "emb", "shape": [6, 5], "init": {"fn": "normal", "std": 0.02}})";
  };
  const std::vector<std::string> variants = {
      manifest("", tensors("", "", "")),
      manifest("", tensors(R"("replicate")", R"({"shard": {"0": [0]}})", R"("replicate")")),
      manifest(R"("mesh": [2, 2])", tensors(R"({"shard": {"0": [1, 0]}})", R"({"shard": {"0": [0]}})", "")),
      manifest(R"("mesh": [3])", tensors(R"({"shard": {"1": [0]}})", "", R"({"shard": {"0": [0]}})")),
      manifest(R"("parallel": {"tensor": {"mode": "1d", "size": 4}})",
               tensors(R"("linear_row")", R"("linear_col_bias")", R"("replicate")")),
      manifest(R"("parallel": {"tensor": {"mode": "2d", "size": 4}})",
               tensors(R"("linear")", R"("linear_bias")", R"("layernorm")")),
      manifest(R"("parallel": {"tensor": {"mode": "2.5d", "size": 8, "depth": 2}})",
               tensors(R"("linear")", R"("linear_bias")", R"("layernorm")")),
      manifest(R"("parallel": {"tensor": {"mode": "3d", "size": 8}})",
               tensors(R"("linear_swapped")", R"("linear_bias_swapped")", R"("layernorm")")),
  };
  const Manifest reference = parse_manifest(variants.front());
  const std::string spec = canonical_spec_json(reference);
  const std::string digest = manifest_digest(reference);
  for (const auto& v : variants) {
    const Manifest m = parse_manifest(v);
    EXPECT_EQ(canonical_spec_json(m), spec) << v;
    EXPECT_EQ(manifest_digest(m), digest) << v;
  }
  // Without explicit fans, the (in, out) Linear weight gets the same fans (and so the same spec)
  // under the 2d, 2.5d and 3d "linear" presets, equal to a plain tensor whose fans are (in, out).
  const std::string w = R"({"name": "w", "shape": [8, 12], "init": {"fn": "xavier_uniform"}, "layout": "linear"})";
  const std::string plain = manifest("", R"({"name": "w", "shape": [8, 12], "init": {"fn": "xavier_uniform"},
                                             "fan_in": 8, "fan_out": 12})");
  const std::string plain_spec = canonical_spec_json(parse_manifest(plain));
  for (const std::string& parallel : {kParallel2d, std::string(R"("parallel": {"tensor": {"mode": "2.5d", "size": 8, "depth": 2}})"),
                                      std::string(R"("parallel": {"tensor": {"mode": "3d", "size": 8}})")}) {
    const Manifest m = parse_manifest(manifest(parallel, w));
    EXPECT_EQ(canonical_spec_json(m), plain_spec) << parallel;
    EXPECT_EQ(manifest_digest(m), manifest_digest(parse_manifest(plain))) << parallel;
  }
  // The shape does change values: the PyTorch reading of [8, 12] is another spec.
  EXPECT_NE(canonical_spec_json(parse_manifest(manifest("", R"({"name": "w", "shape": [8, 12], "init": {"fn": "xavier_uniform"}})"))),
            plain_spec);
}

// ---------------------------------------------------------------------------------------------
// manifest_mesh

void expect_mesh_error(const Manifest& m, int world, std::initializer_list<std::string> parts) {
  try {
    const ProcessMesh mesh = manifest_mesh(m, world);
    ADD_FAILURE() << "no error for world " << world << " (mesh " << mesh.to_string() << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << e.what();
    for (const auto& p : parts) EXPECT_THAT(std::string(e.what()), HasSubstr(p));
  }
}

TEST(ManifestMesh, DefaultIsWorld) {
  const Manifest m = parse_manifest(manifest("", R"({"name": "a", "shape": [4], "init": {"fn": "zeros"}})"));
  for (const int world : {1, 2, 3, 8, 1000}) EXPECT_EQ(manifest_mesh(m, world).shape(), (std::vector<int>{world}));
}

TEST(ManifestMesh, DeclaredMeshMustMatchTheWorld) {
  const Manifest m = parse_manifest(manifest(R"("mesh": [2, 3])", R"({"name": "a", "shape": [4], "init": {"fn": "zeros"}})"));
  EXPECT_EQ(manifest_mesh(m, 6).shape(), (std::vector<int>{2, 3}));
  expect_mesh_error(m, 4, {"6", "4"});
  expect_mesh_error(m, 12, {"6", "12"});
  expect_mesh_error(m, 2, {"[2, 3]", "2"});

  const Manifest p = parse_manifest(manifest(R"("parallel": {"tensor": {"mode": "2.5d", "size": 8, "depth": 2}})",
                                             R"({"name": "a", "shape": [4], "init": {"fn": "zeros"}})"));
  EXPECT_EQ(manifest_mesh(p, 8).shape(), (std::vector<int>{1, 1, 2, 2, 2}));
  // More ranks are data parallel (as Colossal-AI derives it); a world it does not divide is refused.
  EXPECT_EQ(manifest_mesh(p, 16).shape(), (std::vector<int>{2, 1, 2, 2, 2}));
  expect_mesh_error(p, 4, {"8", "does not divide the 4 ranks"});
  expect_mesh_error(p, 12, {"8", "does not divide the 12 ranks"});
}

TEST(ManifestMesh, OneProcessHoldsEverythingWhole) {
  const std::string tensors = R"(
    {"name": "w", "shape": [8, 12], "init": {"fn": "zeros"}, "layout": "linear"},
    {"name": "b", "shape": [12], "init": {"fn": "zeros"}, "layout": "linear_bias"},
    {"name": "n", "shape": [12], "init": {"fn": "ones"}, "layout": "layernorm"},
    {"name": "s", "shape": [5, 3], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [0, 1], "1": [2]}}})";
  struct Case {
    std::string top;
    std::size_t axes;
  };
  const std::vector<Case> cases = {
      {R"("parallel": {"tensor": {"mode": "3d", "size": 8}})", 5},  // dp, pp and three tensor axes
      {R"("parallel": {"tensor": {"mode": "2.5d", "size": 8, "depth": 2}})", 5},
      {R"("mesh": [2, 3, 4])", 3},
  };
  for (const auto& c : cases) {
    const std::string ts = c.top.find("mesh") != std::string::npos
                               ? R"({"name": "s", "shape": [5, 3], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [0, 1], "1": [2]}}})"
                               : tensors;
    const Manifest m = parse_manifest(manifest(c.top, ts));
    const ProcessMesh mesh = manifest_mesh(m, 1);
    EXPECT_EQ(mesh.shape(), std::vector<int>(c.axes, 1)) << c.top;
    EXPECT_EQ(mesh.size(), 1);
    for (const auto& t : m.tensors) {
      ASSERT_NO_THROW(check_layout(t.layout, t.shape.size(), mesh)) << t.name;
      const Box box = local_box(t.shape, t.layout, mesh, 0);
      EXPECT_EQ(box.start, std::vector<Index>(t.shape.size(), 0)) << c.top << " " << t.name;
      EXPECT_EQ(box.extent, t.shape) << c.top << " " << t.name;
    }
  }
  // 2d: dp, pp and two axes; 1d: one.
  const Manifest two = parse_manifest(manifest(kParallel2d, R"({"name": "a", "shape": [4], "init": {"fn": "zeros"}})"));
  EXPECT_EQ(manifest_mesh(two, 1).shape(), (std::vector<int>{1, 1, 1, 1}));
  const Manifest one = parse_manifest(manifest(R"("parallel": {"tensor": {"mode": "1d", "size": 4}})",
                                               R"({"name": "a", "shape": [4], "init": {"fn": "zeros"}})"));
  EXPECT_EQ(manifest_mesh(one, 1).shape(), (std::vector<int>{1, 1, 1}));
}

}  // namespace
}  // namespace shardinit
