// The runs of a box: every walk over a box's elements (fill, compare, locate) goes through BoxRuns,
// so it is checked against the plain definition (each element's flat index, in the box's row-major
// order) on random boxes and ranges, and its merging of whole trailing dimensions is checked.

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "shardinit/tensor/box_runs.hpp"

namespace shardinit {
namespace {

std::vector<Index> by_definition(const Shape& shape, const Box& box, Index first, Index count) {
  std::vector<Index> flats;
  const auto strides = row_major_strides(shape);
  for (Index i = first; i < first + count; ++i) {
    const auto at = unflatten(box.extent, i);
    Index flat = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) flat += (box.start[d] + at[d]) * strides[d];
    flats.push_back(flat);
  }
  return flats;
}

std::vector<Index> by_runs(const Shape& shape, const Box& box, Index first, Index count, std::size_t* runs = nullptr) {
  std::vector<Index> flats;
  BoxRuns walk(shape, box, first, count);
  std::size_t n = 0;
  for (FlatRun run; walk.next(run); ++n) {
    EXPECT_GT(run.length, 0);
    for (Index j = 0; j < run.length; ++j) flats.push_back(run.flat + j);
  }
  if (runs) *runs = n;
  return flats;
}

TEST(BoxRuns, EqualsTheDefinitionOnRandomBoxesAndRanges) {
  std::mt19937_64 random(7);
  for (int trial = 0; trial < 3000; ++trial) {
    const std::size_t rank = random() % 5;
    Shape shape;
    Box box;
    for (std::size_t d = 0; d < rank; ++d) {
      shape.push_back(static_cast<Index>(random() % 6));
      const Index start = shape[d] == 0 ? 0 : static_cast<Index>(random() % (shape[d] + 1));
      const Index extent = static_cast<Index>(random() % (shape[d] - start + 1));
      // Often whole, to exercise merging.
      const bool whole = random() % 2 == 0;
      box.start.push_back(whole ? 0 : start);
      box.extent.push_back(whole ? shape[d] : extent);
    }
    const Index n = box.element_count();
    const Index first = n == 0 ? 0 : static_cast<Index>(random() % (n + 1));
    const Index count = static_cast<Index>(random() % (n - first + 1));
    ASSERT_EQ(by_runs(shape, box, first, count), by_definition(shape, box, first, count))
        << "shape " << shape_to_string(shape) << " box " << box.to_string() << " [" << first << ", +" << count << ")";
    if (count > 0) {
      EXPECT_EQ(box_element_flat(shape, box, first), by_definition(shape, box, first, 1)[0]);
    }
  }
}

TEST(BoxRuns, WholeTrailingDimensionsAreOneRun) {
  std::size_t runs = 0;
  (void)by_runs({6, 5, 4}, Box::whole({6, 5, 4}), 0, 120, &runs);
  EXPECT_EQ(runs, 1u);  // a whole tensor
  (void)by_runs({6, 5, 4}, Box{{2, 0, 0}, {3, 5, 4}}, 0, 60, &runs);
  EXPECT_EQ(runs, 1u);  // a row split
  (void)by_runs({6, 5, 4}, Box{{0, 1, 0}, {6, 2, 4}}, 0, 48, &runs);
  EXPECT_EQ(runs, 6u);  // one run per index of dimension 0
  (void)by_runs({6, 5, 4}, Box{{0, 0, 1}, {6, 5, 2}}, 0, 60, &runs);
  EXPECT_EQ(runs, 30u);  // a column split: one run per row
  (void)by_runs({}, Box{{}, {}}, 0, 1, &runs);
  EXPECT_EQ(runs, 1u);  // a scalar
  (void)by_runs({4, 0}, Box{{0, 0}, {4, 0}}, 0, 0, &runs);
  EXPECT_EQ(runs, 0u);
}

}  // namespace
}  // namespace shardinit
