// resolve(): the one place a tensor's definition gets its meaning. The manifest's keys and the
// definition fields resolve alike; fan conventions, presets' conventions, experts, data partitions,
// padding rows, and the errors that name the field.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "shardinit/definition/tensor_definition.hpp"
#include "shardinit/engine/stream.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/manifest/manifest.hpp"

namespace shardinit {
namespace {

using ::testing::HasSubstr;

Topology one_d(int size) {
  Topology t;
  t.tensor = {TensorParallelMode::one_d, size, 1};
  return t;
}

JobContext job_of(const Topology& t) { return JobContext{static_cast<std::size_t>(topology_axes(t)), t}; }

TensorDefinition definition(std::string name, Shape shape, init::Initializer initializer) {
  TensorDefinition d;
  d.name = std::move(name);
  d.shape = std::move(shape);
  d.initializer = initializer;
  return d;
}

DefinitionField field_of_error(const TensorDefinition& d, const JobContext& job, const std::string& part) {
  try {
    (void)resolve(d, job);
  } catch (const DefinitionError& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr(part));
    return e.field();
  }
  ADD_FAILURE() << "resolved: " << d.name;
  return DefinitionField::name;
}

TEST(FanConventions, Formulas) {
  using init::FanConvention;
  EXPECT_EQ(init::fans_from_shape({6, 4, 3, 3}, FanConvention::torch).fan_in, 36);
  EXPECT_EQ(init::fans_from_shape({6, 4, 3, 3}, FanConvention::torch).fan_out, 54);
  EXPECT_EQ(init::fans_from_shape({6, 4, 3, 3}, FanConvention::patch).fan_in, 36);
  EXPECT_EQ(init::fans_from_shape({6, 4, 3, 3}, FanConvention::patch).fan_out, 6);  // embed_size
  EXPECT_EQ(init::fans_from_shape({50, 8}, FanConvention::in_out).fan_in, 50);
  EXPECT_EQ(init::fans_from_shape({50, 8}, FanConvention::in_out).fan_out, 8);
  EXPECT_THROW((void)init::fans_from_shape({5, 4, 3}, FanConvention::in_out), Error);
  EXPECT_THROW((void)init::fans_from_shape({5}, FanConvention::patch), Error);
  EXPECT_FALSE(init::fans_from_shape({5}, FanConvention::torch).fan_in.has_value());
  for (const auto c : {FanConvention::torch, FanConvention::in_out, FanConvention::patch}) {
    EXPECT_EQ(init::parse_fan_convention(init::fan_convention_name(c)), c);
  }
  EXPECT_THROW((void)init::parse_fan_convention("colossal"), Error);
}

TEST(Resolve, EmbeddingPresetsReadColossalAisFans) {
  // Embedding1D / VocabParallelEmbedding1D.reset_parameters: fan_in = num_embeddings, fan_out = embedding_dim.
  const JobContext job = job_of(one_d(2));
  for (const char* preset : {"embedding", "vocab_embedding"}) {
    TensorDefinition d = definition("wte", {50, 8}, init::kaiming_uniform_({}));
    d.layout = LayoutSpec{LayoutSpec::Kind::preset, preset, {}};
    const ResolvedTensor t = resolve(d, job);
    EXPECT_EQ(t.fan_convention, init::FanConvention::in_out) << preset;
    EXPECT_EQ(t.fans.fan_in, 50) << preset;
    // An explicit convention wins over the preset's.
    d.fan_convention = init::FanConvention::torch;
    EXPECT_EQ(resolve(d, job).fans.fan_in, 8) << preset;
  }
  // The same (V, E) tensor replicated reads PyTorch's fans.
  EXPECT_EQ(resolve(definition("wte", {50, 8}, init::kaiming_uniform_({})), job).fans.fan_in, 8);
}

TEST(Resolve, PatchEmbeddingFansAndPresets) {
  Topology t;
  t.tensor = {TensorParallelMode::two_d, 4, 1};
  TensorDefinition d = definition("patch.weight", {8, 3, 4, 4}, init::xavier_uniform_({}));
  d.layout = LayoutSpec{LayoutSpec::Kind::preset, "patch_embedding", {}};
  const ResolvedTensor r = resolve(d, job_of(t));
  EXPECT_EQ(r.fan_convention, init::FanConvention::patch);
  EXPECT_EQ(r.fans.fan_in, 48);
  EXPECT_EQ(r.fans.fan_out, 8);
}

TEST(Resolve, ExpertTensors) {
  Topology t = one_d(2);
  t.expert = 2;
  t.data = 4;
  // (E, out, in) experts: the preset splits each expert's (out, in), fans from (out, in).
  TensorDefinition d = definition("experts.w1", {4, 16, 12}, init::kaiming_uniform_({}));
  d.expert = true;
  d.layout = LayoutSpec{LayoutSpec::Kind::preset, "linear_col", {}};
  const ResolvedTensor r = resolve(d, job_of(t));
  const int ep = topology_axis(t, ParallelAxis::expert), tp = topology_axis(t, ParallelAxis::tensor);
  EXPECT_EQ(r.layout.dim_axes, (std::vector<std::vector<int>>{{ep}, {tp}, {}}));
  EXPECT_EQ(r.fans.fan_in, 12);
  // Errors: no expert parallelism; experts that do not divide; the expert axis named twice.
  // Without expert parallelism the tensor is still a stack of experts: the same fans, the same values.
  const ResolvedTensor alone = resolve(d, job_of(one_d(2)));
  EXPECT_EQ(alone.fans.fan_in, 12);
  EXPECT_EQ(describe(alone.distribution), describe(r.distribution));
  EXPECT_EQ(alone.layout.dim_axes[0], std::vector<int>{});
  TensorDefinition plain = d;
  plain.layout = LayoutSpec{};
  EXPECT_EQ(describe(resolve(plain, JobContext{}).distribution), describe(r.distribution));
  d.shape = {3, 16, 12};
  EXPECT_EQ(field_of_error(d, job_of(t), "must be divisible by the expert parallel size 2"), DefinitionField::expert);
  d.shape = {4, 16, 12};
  d.layout = LayoutSpec{LayoutSpec::Kind::custom, "", {{ep}, {}, {}}};
  EXPECT_EQ(field_of_error(d, job_of(t), "expert axis"), DefinitionField::layout);
}

TEST(Resolve, DataPartitions) {
  Topology t = one_d(2);
  t.data_partition = DataPartition::zero3;
  // The topology's default; a tensor's own choice wins.
  TensorDefinition d = definition("w", {6, 4}, init::normal_({}));
  const ResolvedTensor r = resolve(d, job_of(t));
  EXPECT_EQ(r.layout.partition, DataPartition::zero3);
  EXPECT_EQ(r.layout.partition_axes, (std::vector<int>{topology_axis(t, ParallelAxis::data)}));
  d.data_partition = DataPartition::none;
  EXPECT_EQ(resolve(d, job_of(t)).layout.partition, DataPartition::none);
  // Without a topology there is no data axis.
  d.data_partition = DataPartition::zero3;
  EXPECT_EQ(field_of_error(d, JobContext{2, std::nullopt}, "needs the data-parallel axis"), DefinitionField::data_partition);
  // Experts are partitioned over their expert-data-parallel axis only.
  Topology e = one_d(1);
  e.expert = 2;
  TensorDefinition x = definition("experts", {4, 3}, init::normal_({}));
  x.expert = true;
  x.data_partition = DataPartition::zero3;
  EXPECT_EQ(resolve(x, job_of(e)).layout.partition_axes, (std::vector<int>{topology_axis(e, ParallelAxis::expert_data)}));
  // A dense tensor over both parts of data.
  x.expert = false;
  EXPECT_EQ(resolve(x, job_of(e)).layout.partition_axes,
            (std::vector<int>{topology_axis(e, ParallelAxis::expert_data), topology_axis(e, ParallelAxis::expert)}));
}

TEST(Resolve, PaddingRow) {
  TensorDefinition d = definition("wte", {5, 3}, init::normal_({}));
  d.padding_idx = -1;  // torch: from the end
  EXPECT_EQ(resolve(d, JobContext{}).padding_idx, 4);
  d.padding_idx = 5;
  EXPECT_EQ(field_of_error(d, JobContext{}, "padding_idx 5 is not a row"), DefinitionField::padding_idx);
  d.padding_idx = -6;
  EXPECT_EQ(field_of_error(d, JobContext{}, "padding_idx -6"), DefinitionField::padding_idx);
  d.shape = {};
  d.padding_idx = 0;
  EXPECT_EQ(field_of_error(d, JobContext{}, "scalar"), DefinitionField::padding_idx);
}

TEST(Resolve, PaddingRowIsZeroEverywhereElseUnchanged) {
  // Filled whole, by boxes, by flat ranges: the padding row is +0, every other element the plain fill's.
  const TensorSpec plain{"wte", {6, 5}, DType::bf16, 11, Normal{0.5, 1}};
  TensorSpec padded = plain;
  padded.padding_idx = 2;
  std::vector<std::byte> a(60), b(60);
  fill_flat(3, plain, 0, 30, a);
  fill_flat(3, padded, 0, 30, b);
  for (int i = 0; i < 30; ++i) {
    const bool row = i / 5 == 2;
    const bool zero = b[2 * i] == std::byte{0} && b[2 * i + 1] == std::byte{0};
    EXPECT_TRUE(zero || !row) << i;
    if (!row) {
      EXPECT_EQ(std::memcmp(&a[2 * i], &b[2 * i], 2), 0) << i;
    }
  }
  // A box crossing the row, and a flat range starting inside it.
  std::vector<std::byte> box(2 * 3 * 2);
  fill_box(3, padded, Box{{1, 2}, {3, 2}}, box);
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 2; ++c) {
      const int flat = (1 + r) * 5 + 2 + c;
      EXPECT_EQ(std::memcmp(&box[2 * (r * 2 + c)], &b[2 * flat], 2), 0) << r << " " << c;
    }
  }
  std::vector<std::byte> range(2 * 7);
  fill_flat(3, padded, 12, 7, range);
  EXPECT_EQ(std::memcmp(range.data(), &b[24], 14), 0);
  TensorSpec bad = plain;
  bad.padding_idx = 6;
  EXPECT_THROW((void)TensorFiller(3, bad), Error);
}

TEST(Resolve, ManifestKeysAreTheDefinitionsFields) {
  // The manifest's keys resolve as the fields do.
  const Manifest m = parse_manifest(R"({"seed": 1, "parallel": {"tensor": {"mode": "1d", "size": 2}, "data": 2, "expert": 2},
    "tensors": [
      {"name": "wte", "shape": [10, 4], "init": {"fn": "kaiming_normal"}, "layout": "vocab_embedding", "padding_idx": -2},
      {"name": "x", "shape": [4, 6, 4], "init": {"fn": "lecun_uniform"}, "expert": true, "layout": "linear_row",
       "data_partition": "fsdp2", "fan_convention": "in_out"}]})");
  Topology t = *m.parallel;
  TensorDefinition wte = definition("wte", {10, 4}, init::kaiming_normal_({}));
  wte.layout = LayoutSpec{LayoutSpec::Kind::preset, "vocab_embedding", {}};
  wte.padding_idx = -2;
  TensorDefinition x = definition("x", {4, 6, 4}, init::lecun_uniform_());
  x.expert = true;
  x.layout = LayoutSpec{LayoutSpec::Kind::preset, "linear_row", {}};
  x.data_partition = DataPartition::fsdp2;
  x.fan_convention = init::FanConvention::in_out;
  for (const auto& [mine, d] : {std::pair{&m.tensors[0], wte}, std::pair{&m.tensors[1], x}}) {
    const ResolvedTensor r = resolve(d, job_of(t));
    EXPECT_EQ(mine->layout, r.layout) << d.name;
    EXPECT_EQ(describe(mine->distribution), describe(r.distribution)) << d.name;
    EXPECT_EQ(mine->fans.fan_in, r.fans.fan_in) << d.name;
    EXPECT_EQ(mine->padding_idx, r.padding_idx) << d.name;
    EXPECT_EQ(mine->stream, stream_from_name(d.name));
  }
  EXPECT_EQ(m.tensors[0].padding_idx, 8);
  EXPECT_EQ(m.tensors[1].fans.fan_in, 6);  // in_out of each expert's (6, 4)
}

TEST(Resolve, ManifestErrorsPointAtTheKey) {
  const auto error_of = [](const std::string& text) {
    try {
      (void)parse_manifest(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string head = R"({"seed": 1, "parallel": {"tensor": {"mode": "1d", "size": 2}}, "tensors": [)";
  EXPECT_THAT(error_of(head + R"({"name": "w", "shape": [3, 2], "init": {"fn": "zeros"}, "padding_idx": 3}]})"),
              HasSubstr("tensors[0] (\"w\").padding_idx: padding_idx 3 is not a row"));
  EXPECT_THAT(error_of(head + R"({"name": "w", "shape": [3, 2], "init": {"fn": "zeros"}, "padding_idx": 1.5}]})"),
              HasSubstr("tensors[0] (\"w\").padding_idx: expected an integer row"));
  EXPECT_THAT(error_of(head + R"({"name": "w", "shape": [], "init": {"fn": "zeros"}, "expert": true}]})"),
              HasSubstr("tensors[0] (\"w\").expert: a scalar has no expert dimension"));
  EXPECT_THAT(error_of(R"({"seed": 1, "parallel": {"pipeline": 2}, "tensors": [{"name": "w", "shape": [4, 4], "init": {"fn": "normal"},
                          "layout": {"shard": {"0": ["pp"]}}, "stage": [0, 1]}]})"),
              HasSubstr("tensors[0] (\"w\").layout: the layout splits over the pipeline axis 1"));
  EXPECT_THAT(error_of(head + R"({"name": "w", "shape": [4, 2], "init": {"fn": "zeros"}, "expert": 1}]})"),
              HasSubstr("tensors[0] (\"w\").expert: expected true or false"));
  EXPECT_THAT(error_of(head + R"({"name": "w", "shape": [4, 2], "init": {"fn": "zeros"}, "data_partition": "zero2"}]})"),
              HasSubstr("tensors[0] (\"w\").data_partition: unknown data partition \"zero2\""));
  EXPECT_THAT(error_of(head + R"({"name": "w", "shape": [4, 2, 2], "init": {"fn": "xavier_normal"}, "fan_convention": "in_out"}]})"),
              HasSubstr("tensors[0] (\"w\").fan_convention: fan convention \"in_out\" reads a 2-D"));
  // A convention is applied only where a fan must be read from the shape.
  EXPECT_EQ(error_of(head + R"({"name": "w", "shape": [4, 2, 2], "init": {"fn": "zeros"}, "fan_convention": "in_out"}]})"), "accepted");
  EXPECT_EQ(error_of(head + R"({"name": "w", "shape": [4], "init": {"fn": "xavier_normal"}, "fan_convention": "in_out",
                                "fan_in": 3, "fan_out": 5}]})"), "accepted");
  EXPECT_THAT(error_of(R"({"seed": 1, "mesh": [2], "tensors": [{"name": "w", "shape": [4], "init": {"fn": "zeros"}, "data_partition": "zero3"}]})"),
              HasSubstr("needs the data-parallel axis"));
  EXPECT_THAT(error_of(R"({"seed": 1, "parallel": {"data": 3, "expert": 2}, "tensors": []})"),
              HasSubstr("parallel.expert: the expert parallel size 2 does not divide the data parallel size 3"));
  EXPECT_THAT(error_of(R"({"seed": 1, "parallel": {"data_partition": "zero"}, "tensors": []})"),
              HasSubstr("parallel.data_partition: unknown data partition"));
}

}  // namespace
}  // namespace shardinit
