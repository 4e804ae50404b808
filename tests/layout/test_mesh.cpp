// The general layout model (docs/layouts.md): row-major process meshes, torch.chunk splits, each
// rank's box, replicas, owners, the one writer per box; fill_shard equals a cut of the whole tensor.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/layout/shard.hpp"

namespace shardinit {
namespace {

using ::testing::HasSubstr;
using Bytes = std::vector<std::byte>;

// ---------------------------------------------------------------------------------------------
// Independent references

// Every coordinate of `shape` in row-major order (last axis fastest), the order of
// arange(prod(shape)).reshape(shape).
std::vector<std::vector<int>> row_major_coordinates(const std::vector<int>& shape) {
  std::vector<std::vector<int>> all;
  std::vector<int> c(shape.size(), 0);
  while (true) {
    all.push_back(c);
    std::size_t a = shape.size();
    while (a > 0) {
      --a;
      if (++c[a] < shape[a]) break;
      c[a] = 0;
      if (a == 0) return all;
    }
    if (shape.empty()) return all;
  }
}

// torch.chunk: chunks of ceil(n / p); the chunk list stops once the elements run out, so the later
// indices are empty (start n).
struct RefChunk {
  Index start;
  Index extent;
};
RefChunk ref_chunk(Index n, Index p, Index index) {
  const Index size = (n + p - 1) / p;
  Index start = 0;
  for (Index i = 0; i < index; ++i) start += std::min(size, n - start);
  return {start, std::min(size, n - start)};
}

bool box_contains(const Box& box, const std::vector<Index>& index) {
  for (std::size_t d = 0; d < index.size(); ++d) {
    if (index[d] < box.start[d] || index[d] >= box.start[d] + box.extent[d]) return false;
  }
  return true;
}

bool boxes_equal(const Box& a, const Box& b) { return a.start == b.start && a.extent == b.extent; }

std::string ints(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// ---------------------------------------------------------------------------------------------
// ProcessMesh

TEST(ProcessMesh, RowMajorNumberingRoundTripsForManyMeshes) {
  std::mt19937_64 rng(20240601);
  std::vector<std::vector<int>> meshes = {{1}, {7}, {2, 3}, {3, 2}, {1, 4}, {4, 1}, {2, 2, 2}, {2, 3, 4}, {4, 3, 2},
                                          {1, 1, 1, 1}, {3, 1, 2, 2}, {2, 5, 1, 3, 2}};
  for (int i = 0; i < 100; ++i) {
    std::vector<int> shape(std::uniform_int_distribution<int>(1, 5)(rng));
    for (int& d : shape) d = std::uniform_int_distribution<int>(1, 5)(rng);
    meshes.push_back(shape);
  }
  for (const auto& shape : meshes) {
    const ProcessMesh mesh(shape);
    EXPECT_EQ(mesh.shape(), shape);
    const auto all = row_major_coordinates(shape);
    ASSERT_EQ(mesh.size(), static_cast<int>(all.size())) << ints(shape);
    for (int rank = 0; rank < mesh.size(); ++rank) {
      // arange(world).reshape(mesh)[c] == rank
      EXPECT_EQ(mesh.coordinates(rank), all[rank]) << "mesh " << ints(shape) << " rank " << rank;
      EXPECT_EQ(mesh.rank_of(all[rank]), rank) << "mesh " << ints(shape) << " coordinates " << ints(all[rank]);
      EXPECT_EQ(mesh.rank_of(mesh.coordinates(rank)), rank);
    }
  }
}

TEST(ProcessMesh, KnownNumbering) {
  const ProcessMesh m23({2, 3});
  EXPECT_EQ(m23.size(), 6);
  EXPECT_EQ(m23.coordinates(0), (std::vector<int>{0, 0}));
  EXPECT_EQ(m23.coordinates(1), (std::vector<int>{0, 1}));
  EXPECT_EQ(m23.coordinates(3), (std::vector<int>{1, 0}));
  EXPECT_EQ(m23.coordinates(5), (std::vector<int>{1, 2}));
  const ProcessMesh m234({2, 3, 4});
  EXPECT_EQ(m234.size(), 24);
  EXPECT_EQ(m234.coordinates(13), (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(m234.coordinates(23), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(m234.rank_of({0, 2, 1}), 9);
  EXPECT_EQ(m234.to_string(), "[2, 3, 4]");
  EXPECT_EQ(ProcessMesh({2, 4}).to_string(), "[2, 4]");
}

void expect_invalid_mesh(const std::vector<int>& shape, const std::string& part) {
  try {
    const ProcessMesh mesh(shape);
    ADD_FAILURE() << "no error for mesh " << ints(shape);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << e.what();
    EXPECT_THAT(std::string(e.what()), HasSubstr(part)) << "mesh " << ints(shape);
  }
}

TEST(ProcessMesh, Errors) {
  expect_invalid_mesh({}, "at least one dimension");
  expect_invalid_mesh({0}, "[0]");
  expect_invalid_mesh({2, 0}, "[2, 0]");
  expect_invalid_mesh({-1, 3}, "[-1, 3]");
  expect_invalid_mesh({4, 4, -2}, "< 1");
  expect_invalid_mesh({65536, 65536}, "too many ranks");
}

// ---------------------------------------------------------------------------------------------
// torch_chunk

TEST(TorchChunk, KnownCases) {
  struct Case {
    Index n, p;
    std::vector<Index> extents;  // what torch.chunk gives, padded with empty chunks to p
  };
  const std::vector<Case> cases = {
      {5, 4, {2, 2, 1, 0}}, {5, 2, {3, 2}},       {6, 4, {2, 2, 2, 0}}, {10, 3, {4, 4, 2}},
      {1, 3, {1, 0, 0}},    {0, 3, {0, 0, 0}},    {0, 1, {0}},          {7, 1, {7}},
      {8, 4, {2, 2, 2, 2}}, {9, 4, {3, 3, 3, 0}}, {3, 5, {1, 1, 1, 0, 0}}, {17, 5, {4, 4, 4, 4, 1}},
  };
  for (const auto& c : cases) {
    Index start = 0;
    for (Index i = 0; i < c.p; ++i) {
      const Chunk chunk = torch_chunk(c.n, c.p, i);
      EXPECT_EQ(chunk.extent, c.extents[i]) << "n=" << c.n << " p=" << c.p << " index " << i;
      if (chunk.extent > 0) { EXPECT_EQ(chunk.start, start) << "n=" << c.n << " p=" << c.p << " index " << i; }
      EXPECT_GE(chunk.start, 0);
      EXPECT_LE(chunk.start + chunk.extent, c.n);
      start += c.extents[i];
    }
  }
  // An empty chunk sits at the end of the dimension.
  EXPECT_EQ(torch_chunk(5, 4, 3).start, 5);
  EXPECT_EQ(torch_chunk(0, 3, 2).start, 0);
}

TEST(TorchChunk, MatchesTorchChunkForAllSmallCases) {
  for (Index n = 0; n <= 60; ++n) {
    for (Index p = 1; p <= 16; ++p) {
      const Index size = (n + p - 1) / p;
      Index total = 0, previous_end = 0;
      for (Index i = 0; i < p; ++i) {
        const Chunk c = torch_chunk(n, p, i);
        const RefChunk r = ref_chunk(n, p, i);
        ASSERT_EQ(c.extent, r.extent) << "n=" << n << " p=" << p << " i=" << i;
        if (c.extent > 0) {
          ASSERT_EQ(c.start, r.start) << "n=" << n << " p=" << p << " i=" << i;
          ASSERT_EQ(c.start, previous_end) << "n=" << n << " p=" << p << " i=" << i;  // contiguous
          previous_end = c.start + c.extent;
        }
        ASSERT_LE(c.extent, size);
        ASSERT_GE(c.start, 0);
        ASSERT_LE(c.start + c.extent, n);
        // Every chunk before the last non-empty one is full.
        if (i + 1 < p && torch_chunk(n, p, i + 1).extent > 0) { ASSERT_EQ(c.extent, size); }
        total += c.extent;
      }
      ASSERT_EQ(total, n) << "n=" << n << " p=" << p;
    }
  }
}

TEST(TorchChunk, LargeDimensions) {
  const Index n = (Index{1} << 40) + 3;
  EXPECT_EQ(torch_chunk(n, 2, 0).extent, (Index{1} << 39) + 2);
  EXPECT_EQ(torch_chunk(n, 2, 1).start, (Index{1} << 39) + 2);
  EXPECT_EQ(torch_chunk(n, 2, 1).extent, (Index{1} << 39) + 1);
}

// Dimensions up to 2^63 - 1: ceil(n / p) and the starts never overflow (index * size would).
TEST(TorchChunk, TheLargestDimensionsDoNotOverflow) {
  const Index n = std::numeric_limits<Index>::max();
  const Index size = n / 3 + 1;  // ceil(n / 3): n = 3 * 3074457345618258602 + 1
  EXPECT_EQ(torch_chunk(n, 3, 0).extent, size);
  EXPECT_EQ(torch_chunk(n, 3, 1).start, size);
  EXPECT_EQ(torch_chunk(n, 3, 2).start, 2 * size);
  EXPECT_EQ(torch_chunk(n, 3, 2).extent, n - 2 * size);
  EXPECT_EQ(torch_chunk(0, 3, 2).extent, 0);
  EXPECT_EQ(torch_chunk(n, n, n - 1).start, n - 1);
  EXPECT_EQ(torch_chunk(n, n, n - 1).extent, 1);
  EXPECT_EQ(torch_chunk(n, 2, 1).start, n / 2 + 1);
  EXPECT_EQ(torch_chunk(n, 2, 1).extent, n / 2);
}

// ---------------------------------------------------------------------------------------------
// Layout properties on random meshes, tensors and layouts

struct RandomCase {
  std::vector<int> mesh_shape;
  Shape shape;
  TensorLayout layout;
};

RandomCase random_case(std::mt19937_64& rng) {
  RandomCase c;
  c.mesh_shape.resize(std::uniform_int_distribution<int>(1, 4)(rng));
  for (int& d : c.mesh_shape) d = std::uniform_int_distribution<int>(1, 4)(rng);
  c.shape.resize(std::uniform_int_distribution<int>(0, 4)(rng));
  for (Index& d : c.shape) {
    // Mostly non-empty dimensions, some zeros.
    d = std::uniform_int_distribution<int>(0, 12)(rng) == 0 ? 0 : std::uniform_int_distribution<Index>(1, 9)(rng);
  }
  c.layout = TensorLayout::replicated(c.shape.size());
  if (!c.shape.empty()) {
    std::vector<int> axes(c.mesh_shape.size());
    std::iota(axes.begin(), axes.end(), 0);
    std::shuffle(axes.begin(), axes.end(), rng);  // random order
    const int used = std::uniform_int_distribution<int>(0, static_cast<int>(axes.size()))(rng);
    for (int u = 0; u < used; ++u) {
      const std::size_t dim = std::uniform_int_distribution<std::size_t>(0, c.shape.size() - 1)(rng);
      c.layout.dim_axes[dim].push_back(axes[u]);
    }
  }
  return c;
}

std::string describe(const RandomCase& c) {
  return "mesh " + ints(c.mesh_shape) + ", shape " + shape_to_string(c.shape) + ", layout " + c.layout.to_string();
}

// The independent reading of the model: the part of dimension d is the mixed-radix number of the
// rank's coordinates on the dimension's axes (major first); a rank's box is torch.chunk of that part.
Box reference_box(const RandomCase& c, const std::vector<int>& coordinates) {
  Box box{std::vector<Index>(c.shape.size()), std::vector<Index>(c.shape.size())};
  for (std::size_t d = 0; d < c.shape.size(); ++d) {
    Index parts = 1, part = 0;
    for (const int a : c.layout.dim_axes[d]) {
      parts *= c.mesh_shape[a];
      part = part * c.mesh_shape[a] + coordinates[a];
    }
    const RefChunk r = ref_chunk(c.shape[d], parts, part);
    box.start[d] = r.extent > 0 ? r.start : c.shape[d];
    box.extent[d] = r.extent;
  }
  return box;
}

std::vector<bool> used_axes(const RandomCase& c) {
  std::vector<bool> used(c.mesh_shape.size(), false);
  for (const auto& axes : c.layout.dim_axes) {
    for (const int a : axes) used[a] = true;
  }
  return used;
}

TEST(LayoutProperties, RandomMeshesTensorsAndLayouts) {
  std::mt19937_64 rng(0x5eed1a70u);
  const std::uint64_t streams[] = {0, 1, 2, 3, 5, 11, 0x9e3779b97f4a7c15ull, std::numeric_limits<std::uint64_t>::max()};
  int cases_with_empty_boxes = 0, cases_with_replicas = 0, cases_split = 0;
  constexpr int kCases = 600;
  for (int n = 0; n < kCases; ++n) {
    const RandomCase c = random_case(rng);
    SCOPED_TRACE(describe(c));
    const ProcessMesh mesh(c.mesh_shape);
    ASSERT_NO_THROW(check_layout(c.layout, c.shape.size(), mesh));
    const Index total = element_count(c.shape);
    const std::vector<bool> used = used_axes(c);
    Index replicas = 1, distinct_parts = 1;
    for (std::size_t a = 0; a < used.size(); ++a) (used[a] ? distinct_parts : replicas) *= c.mesh_shape[a];
    if (replicas > 1) ++cases_with_replicas;
    if (distinct_parts > 1) ++cases_split;

    // Group ranks by their coordinates on the used axes (the shard they hold).
    std::map<std::vector<int>, std::vector<int>> groups;
    std::vector<Box> boxes(mesh.size());
    for (int rank = 0; rank < mesh.size(); ++rank) {
      const std::vector<int> coordinates = mesh.coordinates(rank);
      std::vector<int> key;
      for (std::size_t a = 0; a < used.size(); ++a) {
        if (used[a]) key.push_back(coordinates[a]);
      }
      groups[key].push_back(rank);
      boxes[rank] = local_box(c.shape, c.layout, mesh, rank);
      ASSERT_EQ(boxes[rank].start.size(), c.shape.size());
      ASSERT_EQ(boxes[rank].extent.size(), c.shape.size());
      ASSERT_NO_THROW(check_box_inside(c.shape, boxes[rank])) << "rank " << rank << " box " << boxes[rank].to_string();
      // The box agrees with the independent reading of the model.
      const Box expected = reference_box(c, coordinates);
      for (std::size_t d = 0; d < c.shape.size(); ++d) {
        ASSERT_EQ(boxes[rank].extent[d], expected.extent[d]) << "rank " << rank << " dim " << d;
        if (expected.extent[d] > 0) { ASSERT_EQ(boxes[rank].start[d], expected.start[d]) << "rank " << rank << " dim " << d; }
      }
      // parts_of_dim / part_of_dim are that mixed-radix reading.
      for (std::size_t d = 0; d < c.shape.size(); ++d) {
        Index parts = 1, part = 0;
        for (const int a : c.layout.dim_axes[d]) {
          parts *= c.mesh_shape[a];
          part = part * c.mesh_shape[a] + coordinates[a];
        }
        ASSERT_EQ(parts_of_dim(c.layout, d, mesh), parts);
        ASSERT_EQ(part_of_dim(c.layout, d, mesh, coordinates), part);
      }
      if (boxes[rank].element_count() == 0 && total > 0) ++cases_with_empty_boxes;
    }
    ASSERT_EQ(static_cast<Index>(groups.size()), distinct_parts);

    // (1) distinct shards are disjoint and cover the tensor exactly; (2) replicas own equal boxes.
    std::vector<int> covered(static_cast<std::size_t>(total), 0);
    const std::vector<Index> strides = row_major_strides(c.shape);
    Index sum_of_counts = 0;
    for (const auto& [key, ranks] : groups) {
      ASSERT_EQ(static_cast<Index>(ranks.size()), replicas);
      const Box& box = boxes[ranks.front()];
      for (const int r : ranks) ASSERT_TRUE(boxes_equal(boxes[r], box)) << "replicas " << ranks.front() << " and " << r;
      const Index count = box.element_count();
      sum_of_counts += count;
      for (Index e = 0; e < count; ++e) {
        const std::vector<Index> local = unflatten(box.extent, e);
        Index flat = 0;
        for (std::size_t d = 0; d < local.size(); ++d) flat += (box.start[d] + local[d]) * strides[d];
        ++covered[static_cast<std::size_t>(flat)];
      }
    }
    for (Index e = 0; e < total; ++e) {
      ASSERT_EQ(covered[static_cast<std::size_t>(e)], 1) << "element " << e << " is covered by " << covered[e]
                                                         << " distinct boxes";
    }
    // (5) the extents add up: over all shards to the element count, and along each dimension the
    // distinct parts' extents to the dimension.
    ASSERT_EQ(sum_of_counts, total);
    for (std::size_t d = 0; d < c.shape.size(); ++d) {
      const Index parts = parts_of_dim(c.layout, d, mesh);
      std::map<Index, Index> extent_of_part;
      for (int rank = 0; rank < mesh.size(); ++rank) {
        extent_of_part[part_of_dim(c.layout, d, mesh, mesh.coordinates(rank))] = boxes[rank].extent[d];
      }
      ASSERT_EQ(static_cast<Index>(extent_of_part.size()), parts);
      Index sum = 0;
      for (const auto& [part, extent] : extent_of_part) sum += extent;
      ASSERT_EQ(sum, c.shape[d]) << "dim " << d;
    }

    // (3) owners(index) are the ranks whose box holds the element, as many as there are replicas.
    const Index probes = std::min<Index>(total, 40);
    for (Index p = 0; p < probes; ++p) {
      const Index flat = total <= 40 ? p : std::uniform_int_distribution<Index>(0, total - 1)(rng);
      const std::vector<Index> index = unflatten(c.shape, flat);
      std::vector<int> expected;
      for (int rank = 0; rank < mesh.size(); ++rank) {
        if (box_contains(boxes[rank], index)) expected.push_back(rank);
      }
      const std::vector<int> got = owners(c.shape, c.layout, mesh, index);
      ASSERT_EQ(got, expected) << "element " << flat;
      ASSERT_EQ(static_cast<Index>(got.size()), replicas) << "element " << flat;
    }

    // (4) exactly one writer per shard: replica number stream mod replicas, row-major over the
    // unused axes; it holds the shard's box.
    std::vector<std::uint64_t> case_streams(std::begin(streams), std::end(streams));
    case_streams.push_back(rng());
    for (const std::uint64_t stream : case_streams) {
      for (const auto& [key, ranks] : groups) {
        std::vector<int> writers;
        for (const int r : ranks) {
          if (is_writer(c.layout, mesh, r, stream)) writers.push_back(r);
        }
        ASSERT_EQ(writers.size(), 1u) << "stream " << stream << ", shard of rank " << ranks.front();
        const int w = writers.front();
        ASSERT_TRUE(boxes_equal(boxes[w], boxes[ranks.front()]));
        const std::vector<int> coordinates = mesh.coordinates(w);
        std::uint64_t replica = 0;
        for (std::size_t a = 0; a < used.size(); ++a) {
          if (!used[a]) replica = replica * static_cast<std::uint64_t>(c.mesh_shape[a]) + coordinates[a];
        }
        ASSERT_EQ(replica, stream % static_cast<std::uint64_t>(replicas)) << "stream " << stream << " writer " << w;
      }
    }
  }
  // The generator reached the interesting regions.
  EXPECT_GT(cases_with_empty_boxes, 10);
  EXPECT_GT(cases_with_replicas, 100);
  EXPECT_GT(cases_split, 100);
}

TEST(LayoutProperties, MajorFirstAxisOrder) {
  const ProcessMesh mesh({2, 3});
  const Shape shape{12};
  // {0: [0, 1]}: part c0*3 + c1, which is the rank itself; chunks of 2.
  const TensorLayout major0{{{0, 1}}};
  for (int rank = 0; rank < 6; ++rank) {
    const Box box = local_box(shape, major0, mesh, rank);
    EXPECT_EQ(box.start[0], 2 * rank);
    EXPECT_EQ(box.extent[0], 2);
  }
  // {0: [1, 0]}: part c1*2 + c0. Rank 1 = (0, 1) holds part 2; rank 3 = (1, 0) holds part 1.
  const TensorLayout major1{{{1, 0}}};
  EXPECT_EQ(local_box(shape, major1, mesh, 1).start[0], 4);
  EXPECT_EQ(local_box(shape, major1, mesh, 3).start[0], 2);
  EXPECT_EQ(local_box(shape, major1, mesh, 5).start[0], 10);
  // A dimension split over several axes is chunked once into their product (not chunk-then-chunk):
  // 5 elements in 6 parts are 1,1,1,1,1,0, while chunk-then-chunk (3,2 then 2,1 / 1,1 per row) is not.
  const Shape five{5};
  std::vector<Index> extents;
  for (int rank = 0; rank < 6; ++rank) extents.push_back(local_box(five, major0, mesh, rank).extent[0]);
  EXPECT_EQ(extents, (std::vector<Index>{1, 1, 1, 1, 1, 0}));
}

TEST(LayoutProperties, ScalarAndReplicatedTensors) {
  const ProcessMesh mesh({2, 2});
  for (int rank = 0; rank < 4; ++rank) {
    const Box scalar = local_box({}, TensorLayout::replicated(0), mesh, rank);
    EXPECT_TRUE(scalar.start.empty());
    EXPECT_EQ(scalar.element_count(), 1);
    const Box whole = local_box({3, 4}, TensorLayout::replicated(2), mesh, rank);
    EXPECT_EQ(whole.start, (std::vector<Index>{0, 0}));
    EXPECT_EQ(whole.extent, (std::vector<Index>{3, 4}));
  }
  EXPECT_EQ(owners({}, TensorLayout::replicated(0), mesh, {}), (std::vector<int>{0, 1, 2, 3}));
  // Replicated over 4: the writer rotates with the stream.
  for (std::uint64_t stream = 0; stream < 8; ++stream) {
    for (int rank = 0; rank < 4; ++rank) {
      EXPECT_EQ(is_writer(TensorLayout::replicated(0), mesh, rank, stream), static_cast<std::uint64_t>(rank) == stream % 4);
    }
  }
  EXPECT_EQ(TensorLayout::replicated(2).to_string(), "replicated");
  EXPECT_EQ((TensorLayout{{{0, 2}, {1}}}).to_string(), "{0: [0, 2], 1: [1]}");
}

// ---------------------------------------------------------------------------------------------
// check_layout

void expect_bad_layout(const TensorLayout& layout, std::size_t rank, const ProcessMesh& mesh,
                       const std::vector<std::string>& parts) {
  try {
    check_layout(layout, rank, mesh);
    ADD_FAILURE() << "no error for layout " << layout.to_string() << " on mesh " << mesh.to_string();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << e.what();
    for (const auto& p : parts) EXPECT_THAT(std::string(e.what()), HasSubstr(p)) << layout.to_string();
  }
}

TEST(CheckLayout, AcceptsValidLayouts) {
  const ProcessMesh mesh({2, 3, 2});
  EXPECT_NO_THROW(check_layout(TensorLayout::replicated(0), 0, mesh));
  EXPECT_NO_THROW(check_layout(TensorLayout::replicated(3), 3, mesh));
  EXPECT_NO_THROW(check_layout(TensorLayout{{{2, 0}, {1}}}, 2, mesh));
  EXPECT_NO_THROW(check_layout(TensorLayout{{{}, {0, 1, 2}, {}}}, 3, mesh));
}

TEST(CheckLayout, Errors) {
  const ProcessMesh mesh({2, 2});
  // A mesh axis that does not exist.
  expect_bad_layout(TensorLayout{{{2}, {}}}, 2, mesh, {"mesh axis 2", "[2, 2]", "dimension 0"});
  expect_bad_layout(TensorLayout{{{0}, {1, 5}}}, 2, mesh, {"mesh axis 5", "dimension 1"});
  expect_bad_layout(TensorLayout{{{-1}}}, 1, mesh, {"mesh axis -1"});
  // A mesh axis used twice, in one dimension or in two.
  expect_bad_layout(TensorLayout{{{1, 1}}}, 1, mesh, {"mesh axis 1", "twice"});
  expect_bad_layout(TensorLayout{{{0}, {1}, {0}}}, 3, mesh, {"mesh axis 0", "twice"});
  // The wrong number of dimensions.
  expect_bad_layout(TensorLayout{{{0}}}, 2, mesh, {"1 dimensions", "has 2"});
  expect_bad_layout(TensorLayout::replicated(3), 2, mesh, {"3 dimensions", "has 2"});
  expect_bad_layout(TensorLayout::replicated(1), 0, mesh, {"has 0"});
}

// ---------------------------------------------------------------------------------------------
// fill_shard

// The box `box` cut out of a whole-tensor buffer (row-major within the box).
Bytes cut(const Bytes& whole, const Shape& shape, const Box& box, std::size_t element_size) {
  Bytes out;
  const Index count = box.element_count();
  const std::vector<Index> strides = row_major_strides(shape);
  for (Index e = 0; e < count; ++e) {
    const std::vector<Index> local = unflatten(box.extent, e);
    Index flat = 0;
    for (std::size_t d = 0; d < local.size(); ++d) flat += (box.start[d] + local[d]) * strides[d];
    const auto* p = whole.data() + static_cast<std::size_t>(flat) * element_size;
    out.insert(out.end(), p, p + element_size);
  }
  return out;
}

TEST(FillShard, EachRankEqualsTheSameBoxOfTheWholeTensor) {
  struct Case {
    std::vector<int> mesh;
    Shape shape;
    TensorLayout layout;
  };
  const std::vector<Case> cases = {
      {{4}, {10, 6}, TensorLayout{{{0}, {}}}},
      {{4}, {5}, TensorLayout{{{0}}}},  // uneven: rank 3 holds nothing
      {{2, 3}, {7, 9}, TensorLayout{{{1}, {0}}}},
      {{2, 2, 2}, {6, 5, 4}, TensorLayout{{{0, 2}, {}, {1}}}},
      {{2, 2}, {3, 8}, TensorLayout{{{}, {1}}}},  // replicated over axis 0
      {{3}, {}, TensorLayout::replicated(0)},
      {{2, 3}, {0, 4}, TensorLayout{{{0}, {1}}}},
      {{1, 4}, {2, 3, 5}, TensorLayout{{{}, {}, {1, 0}}}},
  };
  const std::vector<Distribution> distributions = {Uniform{-0.5, 0.5}, Normal{0.1, 0.02}, TruncNormal{0, 1, -2, 2}};
  const DType dtypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16};
  const std::uint64_t seed = 1234;
  int index = 0;
  for (const auto& c : cases) {
    const ProcessMesh mesh(c.mesh);
    for (const DType dtype : dtypes) {
      const Distribution& distribution = distributions[index++ % distributions.size()];
      std::string name = "t";
      name += std::to_string(index);
      const TensorSpec spec{name, c.shape, dtype, 77u + static_cast<std::uint64_t>(index), distribution};
      const std::size_t size = dtype_size(dtype);
      Bytes whole(static_cast<std::size_t>(element_count(c.shape)) * size);
      fill_flat(seed, spec, 0, element_count(c.shape), whole);
      for (int rank = 0; rank < mesh.size(); ++rank) {
        const Box expected_box = local_box(c.shape, c.layout, mesh, rank);
        Bytes out(static_cast<std::size_t>(expected_box.element_count()) * size, std::byte{0xAB});
        const Box box = fill_shard(seed, spec, c.layout, mesh, rank, out).box;
        EXPECT_TRUE(boxes_equal(box, expected_box)) << "rank " << rank;
        EXPECT_EQ(out, cut(whole, c.shape, box, size))
            << "mesh " << mesh.to_string() << " shape " << shape_to_string(c.shape) << " layout " << c.layout.to_string()
            << " dtype " << dtype_name(dtype) << " rank " << rank;
      }
    }
  }
}

TEST(FillShard, Errors) {
  const ProcessMesh mesh({2, 2});
  const TensorSpec spec{"w.layer", {4, 4}, DType::f32, 3, Uniform{-1, 1}};
  const TensorLayout layout{{{0}, {1}}};
  Bytes out(4 * 4);
  for (const int rank : {-1, 4, 100}) {
    try {
      (void)fill_shard(1, spec, layout, mesh, rank, out);
      ADD_FAILURE() << "no error for rank " << rank;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
      EXPECT_THAT(std::string(e.what()), HasSubstr("w.layer"));
      EXPECT_THAT(std::string(e.what()), HasSubstr("rank " + std::to_string(rank)));
      EXPECT_THAT(std::string(e.what()), HasSubstr("[2, 2]"));
    }
  }
  // A layout that does not fit the mesh or the tensor.
  try {
    (void)fill_shard(1, spec, TensorLayout{{{2}, {}}}, mesh, 0, out);
    ADD_FAILURE() << "no error for a missing mesh axis";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_THAT(std::string(e.what()), HasSubstr("w.layer"));
    EXPECT_THAT(std::string(e.what()), HasSubstr("mesh axis 2"));
  }
  try {
    (void)fill_shard(1, spec, TensorLayout{{{0}}}, mesh, 0, out);
    ADD_FAILURE() << "no error for a layout of the wrong rank";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_THAT(std::string(e.what()), HasSubstr("w.layer"));
  }
  // An output of the wrong size.
  Bytes wrong(4 * 4 + 4);
  try {
    (void)fill_shard(1, spec, layout, mesh, 0, wrong);
    ADD_FAILURE() << "no error for an output of the wrong size";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
  }
}

// Fused parts (GPT-2's c_attn: q, k, v side by side): each part is split as the layout splits the
// dimension, and a rank holds its chunk of every part, concatenated in part order, as Colossal-AI's
// split_fused_qkv_in_gpt2_style cuts [Q1, Q2, K1, K2, V1, V2] into [Q1, K1, V1] and [Q2, K2, V2].
TEST(FusedParts, EachPartIsSplitAndTheChunksConcatenated) {
  const ProcessMesh mesh({2, 2});  // axis 0 splits the fused dimension; axis 1: replicas, or zero3
  const Shape shape{5, 12};        // 3 parts of 4 columns (an odd part size is tested below)
  const TensorSpec spec{"c_attn.weight", shape, DType::f32, 5, Normal{0, 1}};
  const TensorFiller filler(9, spec);
  std::vector<float> whole(60);
  filler.fill_flat(0, 60, std::as_writable_bytes(std::span(whole)));
  TensorLayout layout{{{}, {0}}};
  layout.fused = FusedParts{1, 3};
  EXPECT_EQ(layout.to_string(), "{1: [0]} fused 3 along 1");
  EXPECT_EQ(layout_space(shape, layout), (Shape{5, 3, 4}));
  for (int rank = 0; rank < 4; ++rank) {
    const int r = mesh.coordinates(rank)[0];
    std::vector<float> want;  // row by row: the rank's 2 columns of each part
    for (int i = 0; i < 5; ++i) {
      for (int part = 0; part < 3; ++part) {
        for (int j = 0; j < 2; ++j) want.push_back(whole[static_cast<std::size_t>(i * 12 + part * 4 + r * 2 + j)]);
      }
    }
    std::vector<float> got(30);
    const Holding h = fill_shard(9, spec, layout, mesh, rank, std::as_writable_bytes(std::span(got)));
    EXPECT_EQ(h.local_shape(layout), (Shape{5, 6})) << rank;
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << rank;
    // Element (2, 4 + 2 r + 1) (part 1, the rank's second column) is the rank's and its replica's.
    EXPECT_EQ(owners(shape, layout, mesh, {2, 4 + 2 * r + 1}), (std::vector<int>{mesh.rank_of({r, 0}), mesh.rank_of({r, 1})}));
  }
  // zero3 over axis 1: a range of the rank's (5, 6), in its row-major order.
  TensorLayout zero3 = layout;
  zero3.partition = DataPartition::zero3;
  zero3.partition_axes = {1};
  ASSERT_NO_THROW(check_layout(zero3, 2, mesh));
  const Holding half = local_holding(shape, zero3, mesh, mesh.rank_of({1, 1}));
  EXPECT_EQ(half.local_shape(zero3), (Shape{15}));
  EXPECT_EQ(half.first, 15);
  // Parts that split unevenly follow torch.chunk part by part: 3 parts of 5 over 2 ranks are 3 + 2.
  const Shape odd{2, 15};
  EXPECT_EQ(local_holding(odd, layout, mesh, mesh.rank_of({0, 0})).local_shape(layout), (Shape{2, 9}));
  EXPECT_EQ(local_holding(odd, layout, mesh, mesh.rank_of({1, 0})).local_shape(layout), (Shape{2, 6}));
  // Refused: parts that do not divide the dimension, a dimension that does not exist, fsdp2 on a fused dimension 0.
  EXPECT_THROW((void)layout_space(Shape{5, 10}, layout), Error);
  TensorLayout beyond = layout;
  beyond.fused = FusedParts{2, 3};
  EXPECT_THROW(check_layout(beyond, 2, mesh), Error);
  TensorLayout fsdp2{{{0}, {}}};
  fsdp2.fused = FusedParts{0, 3};
  fsdp2.partition = DataPartition::fsdp2;
  fsdp2.partition_axes = {1};
  EXPECT_THROW(check_layout(fsdp2, 2, mesh), Error);
}

}  // namespace
}  // namespace shardinit
