// The job's topology (data x pipeline x tensor) as pure functions: ranks and groups against
// Colossal-AI's own formulas, written out here from its initializers (not from shardinit's code),
// the layer partition rules, stages in layouts, and the manifest keys that describe them.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/layout/topology.hpp"
#include "shardinit/manifest/manifest.hpp"

namespace shardinit {
namespace {

using ::testing::HasSubstr;

Topology topology(int data, int pipeline, TensorParallelConfig tensor, std::array<ParallelAxis, 3> order = {
                                                                        ParallelAxis::data, ParallelAxis::pipeline, ParallelAxis::tensor}) {
  Topology t;
  t.data = data;
  t.pipeline = pipeline;
  t.tensor = tensor;
  t.order = order;
  return t;
}

HeldAlong on_stages(int axis, std::vector<int> stages) { return HeldAlong{HeldAlong::Kind::stages, axis, std::move(stages)}; }

std::string expect_manifest_error(const std::string& text, std::initializer_list<std::string> parts) {
  try {
    (void)parse_manifest(text);
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_THAT(std::string(e.what()), HasSubstr(p)) << text;
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << text;
  return {};
}

// Colossal-AI's legacy groups (colossalai/legacy/context/process_group_initializer): tensor groups
// [i*T + j for j in range(T)]; pipeline groups range(i*(world//D) + j, (i+1)*(world//D), (world//D)//P)
// for i in range(D), j in range((world//D)//P); data groups [i + j*(world//D) for j in range(D)].
std::vector<std::vector<int>> colossal_tensor_groups(int world, int tp) {
  std::vector<std::vector<int>> groups;
  for (int i = 0; i < world / tp; ++i) {
    groups.emplace_back();
    for (int j = 0; j < tp; ++j) groups.back().push_back(i * tp + j);
  }
  return groups;
}
std::vector<std::vector<int>> colossal_pipeline_groups(int world, int dp, int pp) {
  const int data_group_size = world / dp, pipeline_stage_size = data_group_size / pp;
  std::vector<std::vector<int>> groups;
  for (int i = 0; i < dp; ++i) {
    for (int j = 0; j < pipeline_stage_size; ++j) {
      groups.emplace_back();
      for (int r = i * data_group_size + j; r < (i + 1) * data_group_size; r += pipeline_stage_size) groups.back().push_back(r);
    }
  }
  return groups;
}
std::vector<std::vector<int>> colossal_data_groups(int world, int dp) {
  const int groups_count = world / dp;
  std::vector<std::vector<int>> groups;
  for (int i = 0; i < groups_count; ++i) {
    groups.emplace_back();
    for (int j = 0; j < dp; ++j) groups.back().push_back(i + j * groups_count);
  }
  return groups;
}

// The group of `rank` in `groups`, and its local rank there (ranks.index(self.rank)).
std::pair<std::vector<int>, int> group_of(const std::vector<std::vector<int>>& groups, int rank) {
  for (const auto& g : groups) {
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (g[i] == rank) return {g, static_cast<int>(i)};
    }
  }
  throw std::runtime_error("rank in no group");
}

TEST(Topology, LegacyOrderIsColossalAisGroups) {
  const struct {
    int dp, pp;
    TensorParallelConfig tp;
  } cases[] = {{2, 2, {TensorParallelMode::one_d, 2, 1}}, {3, 2, {TensorParallelMode::one_d, 2, 1}},
               {2, 1, {TensorParallelMode::two_d, 4, 1}}, {1, 4, {TensorParallelMode::one_d, 3, 1}},
               {2, 3, {TensorParallelMode::two_p5_d, 8, 2}}, {2, 2, {TensorParallelMode::three_d, 8, 1}},
               {5, 1, {TensorParallelMode::one_d, 1, 1}}};
  for (const auto& c : cases) {
    const Topology t = topology(c.dp, c.pp, c.tp);
    const int world = c.dp * c.pp * c.tp.size;
    const auto tensor = colossal_tensor_groups(world, c.tp.size), pipeline = colossal_pipeline_groups(world, c.dp, c.pp),
               data = colossal_data_groups(world, c.dp);
    EXPECT_EQ(topology_mesh(t, world).size(), world);
    for (int rank = 0; rank < world; ++rank) {
      const ParallelCoordinates at = parallel_coordinates(t, world, rank);
      const auto [tg, tl] = group_of(tensor, rank);
      const auto [pg, pl] = group_of(pipeline, rank);
      const auto [dg, dl] = group_of(data, rank);
      EXPECT_EQ(at, (ParallelCoordinates{dl, pl, tl, 0, dl})) << "rank " << rank;
      EXPECT_EQ(parallel_group(t, world, rank, ParallelAxis::tensor), tg) << "rank " << rank;
      EXPECT_EQ(parallel_group(t, world, rank, ParallelAxis::pipeline), pg) << "rank " << rank;
      EXPECT_EQ(parallel_group(t, world, rank, ParallelAxis::data), dg) << "rank " << rank;
      EXPECT_EQ(rank_of(t, world, at), rank);
      EXPECT_EQ(rank, at.data * c.pp * c.tp.size + at.pipeline * c.tp.size + at.tensor);
    }
  }
}

// HybridParallelPlugin: ProcessGroupMesh(dp, pp, tp) or, with dp_outside=False, (pp, dp, tp);
// ranks by np.unravel_index (row-major).
TEST(Topology, HybridPluginOrders) {
  const int dp = 3, pp = 2, tp = 2, world = 12;
  const Topology outside = topology(dp, pp, {TensorParallelMode::one_d, tp, 1});
  const Topology inside = topology(dp, pp, {TensorParallelMode::one_d, tp, 1}, {ParallelAxis::pipeline, ParallelAxis::data, ParallelAxis::tensor});
  EXPECT_EQ(topology_mesh(inside, world).shape(), (std::vector<int>{2, 3, 2}));
  for (int rank = 0; rank < world; ++rank) {
    const int c0 = rank / (dp * tp), c1 = rank / tp % dp, c2 = rank % tp;  // unravel over (pp, dp, tp)
    EXPECT_EQ(parallel_coordinates(inside, world, rank), (ParallelCoordinates{c1, c0, c2, 0, c1})) << rank;
    const int o0 = rank / (pp * tp), o1 = rank / tp % pp, o2 = rank % tp;  // unravel over (dp, pp, tp)
    EXPECT_EQ(parallel_coordinates(outside, world, rank), (ParallelCoordinates{o0, o1, o2, 0, o0})) << rank;
  }
  EXPECT_EQ(parallel_group(inside, world, 5, ParallelAxis::data), (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(parallel_group(inside, world, 5, ParallelAxis::pipeline), (std::vector<int>{5, 11}));
}

TEST(Topology, DataSizeIsDerivedOrChecked) {
  Topology t;
  t.pipeline = 2;
  t.tensor = {TensorParallelMode::one_d, 2, 1};
  EXPECT_EQ(topology_data_size(t, 4), 1);
  EXPECT_EQ(topology_data_size(t, 12), 3);
  EXPECT_EQ(topology_mesh(t, 12).shape(), (std::vector<int>{3, 2, 2}));
  try {
    (void)topology_data_size(t, 6);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("is 4, which does not divide the 6 ranks"));
  }
  t.data = 2;
  try {
    (void)topology_mesh(t, 12);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("data 2 x pipeline 2 x tensor 2 is 8 ranks, but 12 ranks are running"));
  }
}

// colossalai/legacy/pipeline/utils.py partition_uniform and colossalai/pipeline/stage_manager.py
// distribute_layers, the examples of their sources' behaviour.
TEST(Topology, LayerPartitionsFollowTheirSources) {
  EXPECT_EQ(layers_per_stage(10, 4, LayerPartition::colossal_legacy_uniform), (std::vector<int>{2, 2, 3, 3}));
  EXPECT_EQ(layers_per_stage(10, 4, LayerPartition::colossal_hybrid), (std::vector<int>{2, 3, 3, 2}));
  EXPECT_EQ(layers_per_stage(7, 4, LayerPartition::colossal_legacy_uniform), (std::vector<int>{1, 2, 2, 2}));
  EXPECT_EQ(layers_per_stage(7, 4, LayerPartition::colossal_hybrid), (std::vector<int>{1, 2, 2, 2}));  // from 4//2 - 3//2 = 1
  EXPECT_EQ(layers_per_stage(6, 4, LayerPartition::colossal_hybrid), (std::vector<int>{1, 2, 2, 1}));  // from 2 - 1 = 1
  EXPECT_EQ(layers_per_stage(5, 2, LayerPartition::colossal_hybrid), (std::vector<int>{2, 3}));
  EXPECT_EQ(layers_per_stage(3, 4, LayerPartition::colossal_legacy_uniform), (std::vector<int>{0, 1, 1, 1}));
  EXPECT_EQ(layers_per_stage(32, 4, LayerPartition::colossal_hybrid), (std::vector<int>{8, 8, 8, 8}));
  for (const LayerPartition rule : {LayerPartition::colossal_legacy_uniform, LayerPartition::colossal_hybrid}) {
    for (int stages = 1; stages <= 9; ++stages) {
      for (int layers = 1; layers <= 40; ++layers) {
        const std::vector<int> counts = layers_per_stage(layers, stages, rule);
        int layer = 0;
        for (int s = 0; s < stages; ++s) {
          for (int k = 0; k < counts[static_cast<std::size_t>(s)]; ++k, ++layer) ASSERT_EQ(stage_of_layer(layer, layers, stages, rule), s);
        }
        ASSERT_EQ(layer, layers);
      }
    }
  }
}

// A tensor on stage 1 of a dp 2 x pp 2 x tp 2 mesh: only stage-1 ranks hold it, one writer per piece.
TEST(Topology, StagesDecideWhoHoldsAndWrites) {
  const Topology t = topology(2, 2, {TensorParallelMode::one_d, 2, 1});
  const ProcessMesh mesh = topology_mesh(t, 8);
  TensorLayout layout = topology_layout(t, TensorLayout(std::vector<std::vector<int>>{{0}, {}}));
  EXPECT_EQ(layout, TensorLayout(std::vector<std::vector<int>>{{2}, {}}));
  layout.held_along = {on_stages(topology_axis(t, ParallelAxis::pipeline), {1})};
  ASSERT_NO_THROW(check_layout(layout, 2, mesh));
  EXPECT_EQ(layout.to_string(), "{0: [2]} on stages [1] of axis 1");
  int writers = 0;
  for (int rank = 0; rank < 8; ++rank) {
    const bool stage1 = parallel_coordinates(t, 8, rank).pipeline == 1;
    EXPECT_EQ(holds(layout, mesh, rank), stage1) << rank;
    EXPECT_EQ(local_box(Shape{4, 3}, layout, mesh, rank).element_count() > 0, stage1) << rank;
    writers += is_writer(layout, mesh, rank, 5) ? 1 : 0;
    if (!stage1) {
      EXPECT_FALSE(is_writer(layout, mesh, rank, 5));
    }
  }
  EXPECT_EQ(writers, 2);  // one per tensor-parallel block
  EXPECT_EQ(owners(Shape{4, 3}, layout, mesh, {0, 0}), (std::vector<int>{2, 6}));
  // Tied on both stages: 4 replicas of each block (2 data x 2 stages), one writer.
  layout.held_along[0].coordinates = {0, 1};
  for (std::uint64_t stream = 0; stream < 8; ++stream) {
    int w = 0;
    for (int rank = 0; rank < 8; ++rank) w += is_writer(layout, mesh, rank, stream) && parallel_coordinates(t, 8, rank).tensor == 0;
    EXPECT_EQ(w, 1) << stream;
  }
  // Refused: a stage beyond the pipeline, a stage axis that splits a dimension.
  layout.held_along[0].coordinates = {2};
  EXPECT_THROW(check_layout(layout, 2, mesh), Error);
  layout.held_along[0].coordinates = {1, 0};  // not ascending
  EXPECT_THROW(check_layout(layout, 2, mesh), Error);
  layout.held_along[0].coordinates = {};
  EXPECT_THROW(check_layout(layout, 2, mesh), Error);
  layout.held_along[0] = on_stages(2, {0});
  EXPECT_THROW(check_layout(layout, 2, mesh), Error);
  layout.held_along = {on_stages(1, {0}), on_stages(1, {1})};  // one axis named twice
  EXPECT_THROW(check_layout(layout, 2, mesh), Error);
  layout.held_along = {on_stages(1, {0})};
  layout.partition = DataPartition::zero3;
  layout.partition_axes = {1};  // a partition over a held-along axis
  EXPECT_THROW(check_layout(layout, 2, mesh), Error);
}

// Whole experts on dp 4 (edp 2 x ep 2) x tp 2: expert 3 of 4 lives on ep rank 1 only, split over tp;
// its copies are the two edp ranks', which a zero3 partition shares (never over ep).
TEST(Topology, WholeExpertsLiveOnTheirExpertRank) {
  Topology t = topology(4, 1, {TensorParallelMode::one_d, 2, 1});
  t.expert = 2;
  const ProcessMesh mesh = topology_mesh(t, 8);
  const auto parse = [](const std::string& extra) {
    return parse_manifest(R"({"seed": 1, "parallel": {"data": 4, "expert": 2, "tensor": {"mode": "1d", "size": 2}}, "tensors": [
        {"name": "e3", "shape": [8, 4], "init": {"fn": "normal"}, "layout": "linear_col", "expert": {"index": 3, "of": 4})" +
                          extra + "}]}");
  };
  const Manifest m = parse("");
  const int ep = topology_axis(t, ParallelAxis::expert);
  EXPECT_EQ(m.tensors[0].layout, TensorLayout({{3}, {}}, {HeldAlong{HeldAlong::Kind::expert, ep, {1}}}));
  EXPECT_EQ(m.tensors[0].layout.to_string(), "{0: [3]} on expert rank 1 of axis " + std::to_string(ep));
  int writers = 0;
  for (int rank = 0; rank < 8; ++rank) {
    const ParallelCoordinates c = parallel_coordinates(t, 8, rank);
    EXPECT_EQ(holds(m.tensors[0].layout, mesh, rank), c.expert == 1) << rank;
    writers += is_writer(m.tensors[0].layout, mesh, rank, 7) ? 1 : 0;
  }
  EXPECT_EQ(writers, 2);  // one per tensor-parallel block, among the 2 edp copies
  const Manifest zero3 = parse(R"(, "data_partition": "zero3")");
  EXPECT_EQ(zero3.tensors[0].layout.partition_axes, (std::vector<int>{topology_axis(t, ParallelAxis::expert_data)}));
  // Refused: an index past the count, no experts, counts the expert size does not divide, a layout over ep.
  expect_manifest_error(R"({"seed": 1, "tensors": [{"name": "e", "shape": [2], "init": {"fn": "zeros"}, "expert": {"index": 4, "of": 4}}]})",
                           {"tensors[0] (\"e\").expert", "expert 4 does not exist: there are 4"});
  expect_manifest_error(R"({"seed": 1, "tensors": [{"name": "e", "shape": [2], "init": {"fn": "zeros"}, "expert": {"index": 0, "of": 0}}]})",
                           {".expert", "at least 1, got 0"});
  expect_manifest_error(R"({"seed": 1, "tensors": [{"name": "e", "shape": [2], "init": {"fn": "zeros"}, "expert": {"index": 0, "count": 2}}]})",
                           {"count"});
  expect_manifest_error(R"({"seed": 1, "tensors": [{"name": "e", "shape": [2], "init": {"fn": "zeros"}, "expert": 3}]})",
                           {".expert", "expected true or false", "{\"index\": e, \"of\": N}", "got number 3"});
  expect_manifest_error(R"({"seed": 1, "parallel": {"data": 4, "expert": 2}, "tensors": [
      {"name": "e", "shape": [2], "init": {"fn": "zeros"}, "expert": {"index": 0, "of": 3}}]})",
                           {"the 3 experts must be divisible by the expert parallel size 2"});
  expect_manifest_error(R"({"seed": 1, "parallel": {"data": 4, "expert": 2}, "tensors": [
      {"name": "e", "shape": [2], "init": {"fn": "zeros"}, "expert": {"index": 0, "of": 2}, "layout": {"shard": {"0": ["ep"]}}}]})",
                           {"splits over the expert axis", "held by one expert rank"});
  // Without expert parallelism a whole expert is held by every rank.
  const Manifest alone = parse_manifest(R"({"seed": 1, "tensors": [{"name": "e", "shape": [2], "init": {"fn": "zeros"}, "expert": {"index": 1, "of": 2}}]})");
  EXPECT_TRUE(alone.tensors[0].layout.held_along.empty());
}

// "fused": {"dim": d, "parts": k} (docs/manifest.md): the layout splits each part; errors name the value.
TEST(TopologyManifest, FusedPartsAndTheirErrors) {
  const std::string head = R"({"seed": 1, "parallel": {"tensor": {"mode": "1d", "size": 2}}, "tensors": [{"name": "qkv", "init": {"fn": "normal"}, )";
  const Manifest m = parse_manifest(head + R"("shape": [4, 12], "layout": {"shard": {"1": ["tp"]}}, "fused": {"dim": 1, "parts": 3}}]})");
  EXPECT_EQ(m.tensors[0].layout.to_string(), "{1: [2]} fused 3 along 1");  // the mesh [dp, pp, tp]
  EXPECT_EQ(manifest_digest(m), manifest_digest(parse_manifest(head + R"("shape": [4, 12], "layout": {"shard": {"1": ["tp"]}}}]})")))
      << "fusing never changes a value";
  expect_manifest_error(head + R"("shape": [4, 12], "fused": {"dim": 2, "parts": 3}}]})", {".fused", "dimension 2 does not exist"});
  expect_manifest_error(head + R"("shape": [4, 10], "fused": {"dim": 1, "parts": 3}}]})", {".fused", "dimension 1 (10) is not 3 equal parts"});
  expect_manifest_error(head + R"("shape": [4, 12], "fused": {"dim": 1, "parts": 0}}]})", {".fused.parts", "at least one part, got 0"});
  expect_manifest_error(head + R"("shape": [4, 12], "fused": {"dim": 1}}]})", {"fused", "parts"});
  expect_manifest_error(head + R"("shape": [4, 12], "fused": {"dim": 1, "parts": 3, "sizes": [4]}}]})", {"sizes"});
  expect_manifest_error(head + R"("shape": [4, 12], "fused": 3}]})", {".fused", "expected {\"dim\": d, \"parts\": k}"});
  // A preset's evenness is each part's: 3 parts of 3 rows cannot split over 2 ranks evenly.
  expect_manifest_error(head + R"("shape": [9, 4], "layout": "linear_col", "fused": {"dim": 0, "parts": 3}}]})", {"divide it evenly"});
  expect_manifest_error(R"({"seed": 1, "parallel": {"data": 2}, "tensors": [{"name": "w", "init": {"fn": "normal"}, "shape": [6, 2],
      "fused": {"dim": 0, "parts": 3}, "data_partition": "fsdp2"}]})", {".fused", "fsdp2 chunks dimension 0"});
}

TEST(TopologyManifest, KeysAndTheirErrors) {
  const Manifest m = parse_manifest(R"({"seed": 1, "parallel": {"data": 2, "pipeline": {"size": 2, "layers": 10, "partition": "hybrid"},
      "tensor": {"mode": "1d", "size": 2}, "order": ["pp", "dp", "tp"]}, "tensors": [
      {"name": "a", "shape": [4, 4], "init": {"fn": "zeros"}, "layout": "linear_col", "layer": 4},
      {"name": "b", "shape": [4], "init": {"fn": "zeros"}, "layer": 5},
      {"name": "tied", "shape": [4, 2], "init": {"fn": "zeros"}, "stage": [1, 0]},
      {"name": "named", "shape": [4, 2], "init": {"fn": "zeros"}, "layout": {"shard": {"0": ["dp"], "1": ["tp"]}}, "stage": 0}]})");
  ASSERT_TRUE(m.parallel);
  EXPECT_EQ(manifest_mesh(m, 8).shape(), (std::vector<int>{2, 2, 2}));
  const auto& t = m.tensors;
  EXPECT_EQ(t[0].layout, TensorLayout({{2}, {}}, {on_stages(0, {0})}));  // hybrid: 10 on 2 = (5, 5); layer 4 on stage 0
  EXPECT_EQ(t[1].layout, TensorLayout({{}}, {on_stages(0, {1})}));
  EXPECT_EQ(t[2].layout, TensorLayout({{}, {}}, {on_stages(0, {0, 1})}));
  EXPECT_EQ(t[3].layout, TensorLayout({{1}, {2}}, {on_stages(0, {0})}));
  // A named custom mesh, outermost first as written (not sorted by name).
  const Manifest named = parse_manifest(R"({"seed": 1, "mesh": {"tp": 2, "dp": 3}, "tensors": [
      {"name": "w", "shape": [4, 6], "init": {"fn": "zeros"}, "layout": {"shard": {"0": ["tp"], "1": ["dp"]}}}]})");
  EXPECT_EQ(manifest_mesh(named, 6).shape(), (std::vector<int>{2, 3}));
  EXPECT_EQ(named.tensors[0].layout, TensorLayout(std::vector<std::vector<int>>{{0}, {1}}));
  EXPECT_NE(manifest_run_digest(named), manifest_run_digest(parse_manifest(R"({"seed": 1, "mesh": [2, 3], "tensors": [
      {"name": "w", "shape": [4, 6], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [0], "1": [1]}}}]})")));

  const std::string pp2 = R"({"seed": 1, "parallel": {"pipeline": 2}, "tensors": [)";
  expect_manifest_error(pp2 + R"({"name": "w", "shape": [4], "init": {"fn": "zeros"}}]})",
                        {"tensors[0] (\"w\")", "the pipeline has 2 stages: say which hold this tensor", "line 1, column"});
  expect_manifest_error(pp2 + R"({"name": "w", "shape": [4], "init": {"fn": "zeros"}, "stage": 2}]})",
                        {"tensors[0] (\"w\").stage", "stage 2 does not exist: the pipeline has 2 stages"});
  expect_manifest_error(pp2 + R"({"name": "w", "shape": [4], "init": {"fn": "zeros"}, "stage": [1, 1]}]})", {"listed twice"});
  expect_manifest_error(pp2 + R"({"name": "w", "shape": [4], "init": {"fn": "zeros"}, "stage": []}]})", {"at least one stage"});
  expect_manifest_error(pp2 + R"({"name": "w", "shape": [4], "init": {"fn": "zeros"}, "layer": 0}]})", {"\"layer\" needs", "\"layers\": L"});
  expect_manifest_error(pp2 + R"({"name": "w", "shape": [4], "init": {"fn": "zeros"}, "layer": 0, "stage": 0}]})", {"either \"stage\" or \"layer\""});
  expect_manifest_error(R"({"seed": 1, "parallel": {"pipeline": {"size": 2, "layers": 3}}, "tensors": [
      {"name": "w", "shape": [4], "init": {"fn": "zeros"}, "layer": 3}]})", {"layer 3 does not exist: the pipeline has 3 layers"});
  expect_manifest_error(R"({"seed": 1, "parallel": {"pipeline": {"size": 2, "layers": 3, "partition": "even"}}, "tensors": []})",
                        {"parallel.pipeline.partition", "\"even\"", "uniform", "hybrid"});
  expect_manifest_error(R"({"seed": 1, "parallel": {"order": ["dp", "dp", "tp"]}, "tensors": []})", {"must appear once"});
  expect_manifest_error(R"({"seed": 1, "parallel": {"order": ["dp", "xp", "tp"]}, "tensors": []})", {"parallel.order[1]", "\"xp\""});
  expect_manifest_error(R"({"seed": 1, "parallel": {"order": ["dp", "ep", "tp"]}, "tensors": []})", {"parallel.order[1]", "the order lists"});
  expect_manifest_error(R"({"seed": 1, "parallel": {"data": 0}, "tensors": []})", {"parallel.data", "got 0"});
  expect_manifest_error(R"({"seed": 1, "mesh": [2], "tensors": [{"name": "w", "shape": [4], "init": {"fn": "zeros"}, "stage": 1}]})",
                        {"stage 1 does not exist: the pipeline has 1 stage", "\"parallel\": {\"pipeline\": P}"});
  expect_manifest_error(R"({"seed": 1, "mesh": {"dp": 2, "tp": 2}, "tensors": [
      {"name": "w", "shape": [4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": ["pp"]}}}]})",
                        {"mesh axis \"pp\" does not exist (the mesh's axes are \"dp\", \"tp\")"});
  // With 2d tensor parallelism "tp" is two axes: it cannot name one.
  expect_manifest_error(R"({"seed": 1, "parallel": {"tensor": {"mode": "2d", "size": 4}}, "tensors": [
      {"name": "w", "shape": [4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": ["tp"]}}}]})", {"mesh axis \"tp\" does not exist"});
  expect_manifest_error(R"({"seed": 1, "parallel": {"tensor": {"mode": "2d", "size": 4}}, "tensors": [
      {"name": "w", "shape": [4], "init": {"fn": "zeros"}, "layout": {"shard": {"0": [""]}}}]})",
                        {"mesh axis \"\" does not exist (the mesh's axes are \"dp\", \"pp\")"});
}

// The run digest of a tensor-parallel-only manifest is unchanged by the topology keys' defaults, and
// changes with every key that changes who holds what.
TEST(TopologyManifest, RunDigestCoversTheTopology) {
  const auto digest = [](const std::string& parallel, const std::string& extra = "") {
    return manifest_run_digest(parse_manifest(R"({"seed": 1, "parallel": )" + parallel +
                                              R"(, "tensors": [{"name": "w", "shape": [4], "init": {"fn": "zeros"})" + extra + "}]}"));
  };
  const std::string base = digest(R"({"tensor": {"mode": "1d", "size": 2}})");
  EXPECT_EQ(base, digest(R"({"tensor": {"mode": "1d", "size": 2}, "pipeline": 1, "order": ["dp", "pp", "tp"]})"));
  EXPECT_NE(base, digest(R"({"tensor": {"mode": "1d", "size": 2}, "data": 2})"));
  EXPECT_NE(base, digest(R"({"tensor": {"mode": "1d", "size": 2}, "order": ["pp", "dp", "tp"]})"));
  EXPECT_NE(digest(R"({"pipeline": 2})", R"(, "stage": 0)"), digest(R"({"pipeline": 2})", R"(, "stage": 1)"));
}

}  // namespace
}  // namespace shardinit
