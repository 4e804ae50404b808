// Data partitions and experts as pure functions: DeepSpeed ZeRO-3's flat partition, FSDP2's Shard(0),
// the runs of a box range, and the expert axis inside the data part in Megatron-Core's rank order.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "shardinit/error.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/layout/topology.hpp"

namespace shardinit {
namespace {

// ---------------------------------------------------------------------------------------------
// zero3_partition: DeepSpeed's numbers, worked by hand from partition_parameters.py
// (padding = P - numel % P when there is a remainder; size = (numel + padding) / P; start = size * r).

TEST(Zero3Partition, DeepSpeedExamples) {
  struct Case {
    Index numel, parts;
    Index size;
    std::vector<std::pair<Index, Index>> held;  // (first, count) for r = 0..parts-1
  };
  const Case cases[] = {
      {10, 4, 3, {{0, 3}, {3, 3}, {6, 3}, {9, 1}}},  // padded to 12
      {5, 4, 2, {{0, 2}, {2, 2}, {4, 1}, {5, 0}}},   // padded to 8: the last rank holds padding only
      {8, 4, 2, {{0, 2}, {2, 2}, {4, 2}, {6, 2}}},   // divides: no padding
      {1, 3, 1, {{0, 1}, {1, 0}, {1, 0}}},
      {0, 2, 0, {{0, 0}, {0, 0}}},
      {209, 3, 70, {{0, 70}, {70, 70}, {140, 69}}},
      {7, 1, 7, {{0, 7}}},
  };
  for (const Case& c : cases) {
    for (Index r = 0; r < c.parts; ++r) {
      const FlatPartition p = zero3_partition(c.numel, c.parts, r);
      EXPECT_EQ(p.size, c.size) << c.numel << " over " << c.parts;
      EXPECT_EQ(p.first, c.held[static_cast<std::size_t>(r)].first) << c.numel << " over " << c.parts << " rank " << r;
      EXPECT_EQ(p.count, c.held[static_cast<std::size_t>(r)].second) << c.numel << " over " << c.parts << " rank " << r;
    }
  }
  // Near the top of the index range nothing overflows.
  const Index big = std::numeric_limits<Index>::max();
  const FlatPartition last = zero3_partition(big, 3, 2);
  EXPECT_EQ(last.first + last.count, big);
}

TEST(Zero3Partition, TilesEveryTensor) {
  for (Index numel = 0; numel <= 60; ++numel) {
    for (Index parts = 1; parts <= 9; ++parts) {
      Index next = 0;
      for (Index r = 0; r < parts; ++r) {
        const FlatPartition p = zero3_partition(numel, parts, r);
        EXPECT_EQ(p.first, next) << numel << " " << parts << " " << r;
        EXPECT_LE(p.count, p.size);
        EXPECT_EQ(p.size * parts - numel, numel % parts == 0 ? 0 : parts - numel % parts);  // DeepSpeed's padding
        next += p.count;
      }
      EXPECT_EQ(next, numel);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// box_range_boxes

TEST(BoxRange, BoxesAreTheRangeInOrder) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 400; ++trial) {
    const std::size_t rank = 1 + rng() % 4;
    Box box;
    Shape shape;
    for (std::size_t d = 0; d < rank; ++d) {
      shape.push_back(1 + static_cast<Index>(rng() % 6));
      box.start.push_back(static_cast<Index>(rng() % static_cast<std::uint64_t>(shape[d])));
      box.extent.push_back(1 + static_cast<Index>(rng() % static_cast<std::uint64_t>(shape[d] - box.start[d])));
    }
    const Index n = box.element_count();
    const Index first = static_cast<Index>(rng() % static_cast<std::uint64_t>(n + 1));
    const Index count = static_cast<Index>(rng() % static_cast<std::uint64_t>(n - first + 1));
    const std::vector<Box> pieces = box_range_boxes(box, first, count);
    EXPECT_LE(pieces.size(), 2 * rank - 1);
    // Walk the pieces in order: their elements are the box's positions first..first+count-1.
    Index position = first;
    for (const Box& piece : pieces) {
      check_box_inside(shape, piece);
      std::vector<Index> at(piece.start);
      for (Index k = 0; k < piece.element_count(); ++k) {
        Index in_box = 0;  // the element's position in the box's row-major order
        for (std::size_t d = 0; d < rank; ++d) in_box = in_box * box.extent[d] + (at[d] - box.start[d]);
        ASSERT_EQ(in_box, position) << box.to_string() << " [" << first << ", +" << count << ") piece " << piece.to_string();
        ++position;
        for (std::size_t d = rank; d-- > 0;) {
          if (++at[d] < piece.start[d] + piece.extent[d]) break;
          at[d] = piece.start[d];
        }
      }
    }
    EXPECT_EQ(position, first + count);
  }
  // A scalar: one piece or none.
  EXPECT_EQ(box_range_boxes(Box{{}, {}}, 0, 1).size(), 1u);
  EXPECT_TRUE(box_range_boxes(Box{{}, {}}, 0, 0).empty());
}

// ---------------------------------------------------------------------------------------------
// Layouts with partitions

TensorLayout partitioned(std::vector<std::vector<int>> dims, DataPartition kind, std::vector<int> axes) {
  TensorLayout layout(std::move(dims));
  layout.partition = kind;
  layout.partition_axes = std::move(axes);
  return layout;
}

TEST(DataPartitionLayout, Zero3RangesOfTheTensorParallelBox) {
  // mesh [dp 3, tp 2]; a (38, 11) weight split by rows over tp: each tp box is 19 x 11 = 209 elements,
  // partitioned over the 3 dp ranks as DeepSpeed would partition the tp-local parameter.
  const ProcessMesh mesh({3, 2});
  const TensorLayout layout = partitioned({{1}, {}}, DataPartition::zero3, {0});
  check_layout(layout, 2, mesh);
  for (int rank = 0; rank < 6; ++rank) {
    const Holding h = local_holding({38, 11}, layout, mesh, rank);
    const int dp = rank / 2, tp = rank % 2;
    EXPECT_EQ(h.box.start, (std::vector<Index>{19 * tp, 0}));
    EXPECT_EQ(h.box.extent, (std::vector<Index>{19, 11}));
    const FlatPartition want = zero3_partition(209, 3, dp);
    EXPECT_TRUE(h.flat);
    EXPECT_EQ(h.first, want.first);
    EXPECT_EQ(h.count, want.count);
    EXPECT_EQ(h.buffer, 70);
    EXPECT_TRUE(is_writer(layout, mesh, rank, 12345)) << "a partition has one holder per element";
  }
  // owners: exactly the rank whose range has the element.
  EXPECT_EQ(owners({38, 11}, layout, mesh, {0, 0}), (std::vector<int>{0}));
  EXPECT_EQ(owners({38, 11}, layout, mesh, {6, 4}), (std::vector<int>{2}));   // position 6 * 11 + 4 = 70 of box 0: dp 1
  EXPECT_EQ(owners({38, 11}, layout, mesh, {18, 10}), (std::vector<int>{4}));  // the last of box 0: dp 2
  EXPECT_EQ(owners({38, 11}, layout, mesh, {19, 0}), (std::vector<int>{1}));   // box 1 starts at dp 0
}

TEST(DataPartitionLayout, Fsdp2ChunksTheLocalDimensionZero) {
  // mesh [dp 4, tp 2]; a (7, 8) weight split by columns over tp; FSDP2 chunks its 7 rows over dp:
  // torch.chunk(7, 4) = 2, 2, 2, 1.
  const ProcessMesh mesh({4, 2});
  const TensorLayout layout = partitioned({{}, {1}}, DataPartition::fsdp2, {0});
  const Index rows[][2] = {{0, 2}, {2, 2}, {4, 2}, {6, 1}};
  for (int rank = 0; rank < 8; ++rank) {
    const Box box = local_box({7, 8}, layout, mesh, rank);
    EXPECT_EQ(box.start, (std::vector<Index>{rows[rank / 2][0], 4 * (rank % 2)}));
    EXPECT_EQ(box.extent, (std::vector<Index>{rows[rank / 2][1], 4}));
    EXPECT_FALSE(local_holding({7, 8}, layout, mesh, rank).flat);
  }
  // Chunks of the local rows, not of the global ones: dim 0 split over tp then FSDP2 over dp of
  // (10,) rows: tp boxes 5 and 5, each chunked 2, 2, 1 over dp 3 (a global chunk of 10 by 6 would not be).
  const ProcessMesh m({3, 2});
  const TensorLayout both = partitioned({{1}}, DataPartition::fsdp2, {0});
  EXPECT_EQ(local_box({10}, both, m, 5).start, (std::vector<Index>{9}));  // tp 1 (rows 5..9), dp 2: its last chunk
  EXPECT_EQ(local_box({10}, both, m, 5).extent, (std::vector<Index>{1}));
}

TEST(DataPartitionLayout, CheckLayoutRefusesBadPartitions) {
  const ProcessMesh mesh({2, 2});
  EXPECT_THROW(check_layout(partitioned({{0}, {}}, DataPartition::zero3, {0}), 2, mesh), Error);  // axis splits a dim
  EXPECT_THROW(check_layout(partitioned({{}, {}}, DataPartition::zero3, {}), 2, mesh), Error);     // no axes
  EXPECT_THROW(check_layout(partitioned({{}, {}}, DataPartition::none, {0}), 2, mesh), Error);     // axes, no partition
  EXPECT_THROW(check_layout(partitioned({{}, {}}, DataPartition::zero3, {2}), 2, mesh), Error);    // no such axis
  EXPECT_THROW(check_layout(partitioned({}, DataPartition::fsdp2, {0}), 0, mesh), Error);          // a scalar has no dim 0
  EXPECT_NO_THROW(check_layout(partitioned({{}, {1}}, DataPartition::zero3, {0}), 2, mesh));
  EXPECT_EQ(parse_data_partition("zero3"), DataPartition::zero3);
  EXPECT_THROW((void)parse_data_partition("zero2"), Error);
}

// ---------------------------------------------------------------------------------------------
// Experts: Megatron-Core's numbering (megatron/core/parallel_state.py: RankGenerator over
// "tp-cp-ep-dp-pp", fastest first), rank = tp + tp * (ep + ep * (edp + edp * pp)).

TEST(ExpertTopology, MegatronRankOrder) {
  Topology t;
  t.pipeline = 2;
  t.tensor = {TensorParallelMode::one_d, 2, 1};
  t.expert = 2;
  t.order = {ParallelAxis::pipeline, ParallelAxis::data, ParallelAxis::tensor};  // Megatron's pp outermost
  const int world = 24;  // dp 6 = edp 3 x ep 2
  EXPECT_EQ(topology_mesh(t, world).shape(), (std::vector<int>{2, 3, 2, 2}));
  EXPECT_EQ(topology_axis(t, ParallelAxis::expert_data), 1);
  EXPECT_EQ(topology_axis(t, ParallelAxis::expert), 2);
  EXPECT_EQ(topology_axis(t, ParallelAxis::tensor), 3);
  EXPECT_EQ(topology_axis_names(t), (std::vector<std::string>{"pp", "edp", "ep", "tp"}));
  for (int pp = 0; pp < 2; ++pp) {
    for (int edp = 0; edp < 3; ++edp) {
      for (int ep = 0; ep < 2; ++ep) {
        for (int tp = 0; tp < 2; ++tp) {
          const int rank = tp + 2 * (ep + 2 * (edp + 3 * pp));
          const ParallelCoordinates c = parallel_coordinates(t, world, rank);
          EXPECT_EQ(c.pipeline, pp);
          EXPECT_EQ(c.expert, ep);
          EXPECT_EQ(c.expert_data, edp);
          EXPECT_EQ(c.data, edp * 2 + ep) << "the dense data-parallel rank (Megatron's dense generator, cp = 1)";
          EXPECT_EQ(c.tensor, tp);
          EXPECT_EQ(rank_of(t, world, c), rank);
          // Megatron's groups: ep = ranks differing only in ep (stride tp), edp stride tp * ep.
          EXPECT_EQ(parallel_group(t, world, rank, ParallelAxis::expert),
                    (std::vector<int>{tp + 2 * (0 + 2 * (edp + 3 * pp)), tp + 2 * (1 + 2 * (edp + 3 * pp))}));
          EXPECT_EQ(parallel_group(t, world, rank, ParallelAxis::expert_data),
                    (std::vector<int>{tp + 2 * (ep + 2 * (0 + 3 * pp)), tp + 2 * (ep + 2 * (1 + 3 * pp)), tp + 2 * (ep + 2 * (2 + 3 * pp))}));
          std::vector<int> dp_group;
          for (int d = 0; d < 6; ++d) dp_group.push_back(tp + 2 * (d + 6 * pp));
          EXPECT_EQ(parallel_group(t, world, rank, ParallelAxis::data), dp_group);
        }
      }
    }
  }
  // The expert size must divide the data size.
  t.expert = 4;
  EXPECT_THROW((void)topology_mesh(t, world), Error);
  try {
    (void)topology_data_size(t, world);
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("expert parallel size 4 does not divide the data parallel size 6"));
  }
}

}  // namespace
}  // namespace shardinit
