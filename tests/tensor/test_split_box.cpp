// split_box: pieces of bounded size, inside the box, disjoint, covering it, in the box's row-major
// order; TensorFiller::fill_box_range: a slice of the box's row-major order equals the same slice of
// fill_box.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit {
namespace {

using ::testing::HasSubstr;
using Bytes = std::vector<std::byte>;

// A random shape of rank 0..max_rank and a random box inside it.
struct ShapeAndBox {
  Shape shape;
  Box box;
};

ShapeAndBox random_shape_and_box(std::mt19937_64& rng, int max_rank, Index max_dim, int zero_one_in) {
  ShapeAndBox s;
  s.shape.resize(std::uniform_int_distribution<int>(0, max_rank)(rng));
  for (Index& d : s.shape) d = std::uniform_int_distribution<Index>(1, max_dim)(rng);
  s.box.start.resize(s.shape.size());
  s.box.extent.resize(s.shape.size());
  for (std::size_t d = 0; d < s.shape.size(); ++d) {
    s.box.start[d] = std::uniform_int_distribution<Index>(0, s.shape[d] - 1)(rng);
    s.box.extent[d] = std::uniform_int_distribution<Index>(1, s.shape[d] - s.box.start[d])(rng);
    if (std::uniform_int_distribution<int>(0, zero_one_in)(rng) == 0) s.box.extent[d] = 0;
  }
  return s;
}

// The box's elements as global flat indices of `shape`, in the box's row-major order.
std::vector<Index> flat_indices(const Shape& shape, const Box& box) {
  std::vector<Index> out;
  const Index count = box.element_count();
  const std::vector<Index> strides = row_major_strides(shape);
  for (Index e = 0; e < count; ++e) {
    const std::vector<Index> local = unflatten(box.extent, e);
    Index flat = 0;
    for (std::size_t d = 0; d < local.size(); ++d) flat += (box.start[d] + local[d]) * strides[d];
    out.push_back(flat);
  }
  return out;
}

void check_pieces(const Shape& shape, const Box& box, Index max_elements, const std::vector<Box>& pieces) {
  const std::string what = "box " + box.to_string() + " max_elements " + std::to_string(max_elements);
  std::vector<Index> concatenated;
  for (const Box& piece : pieces) {
    ASSERT_EQ(piece.start.size(), box.start.size()) << what;
    ASSERT_EQ(piece.extent.size(), box.extent.size()) << what;
    for (std::size_t d = 0; d < box.start.size(); ++d) {
      ASSERT_GE(piece.start[d], box.start[d]) << what << " piece " << piece.to_string();
      ASSERT_GE(piece.extent[d], 0) << what << " piece " << piece.to_string();
      ASSERT_LE(piece.start[d] + piece.extent[d], box.start[d] + box.extent[d]) << what << " piece " << piece.to_string();
    }
    const Index n = piece.element_count();
    ASSERT_GE(n, 1) << what << ": empty piece " << piece.to_string();
    ASSERT_LE(n, std::max<Index>(max_elements, 1)) << what << " piece " << piece.to_string();
    const std::vector<Index> flat = flat_indices(shape, piece);
    concatenated.insert(concatenated.end(), flat.begin(), flat.end());
  }
  // In order, disjoint and covering: the pieces' elements, concatenated, are the box's elements in
  // row-major order.
  ASSERT_EQ(concatenated, flat_indices(shape, box)) << what;
}

TEST(SplitBox, RandomBoxesAndLimits) {
  std::mt19937_64 rng(0xb0c5u);
  int multi_piece = 0;
  for (int n = 0; n < 3000; ++n) {
    const ShapeAndBox s = random_shape_and_box(rng, 5, 7, 25);
    const Index count = s.box.element_count();
    Index max_elements = 0;
    switch (std::uniform_int_distribution<int>(0, 5)(rng)) {
      case 0: max_elements = 1; break;
      case 1: max_elements = std::numeric_limits<Index>::max(); break;
      case 2: max_elements = count; break;
      case 3: max_elements = std::max<Index>(1, count - 1); break;
      default: max_elements = std::uniform_int_distribution<Index>(1, std::max<Index>(1, count + 2))(rng); break;
    }
    const std::vector<Box> pieces = split_box(s.box, max_elements);
    ASSERT_NO_FATAL_FAILURE(check_pieces(s.shape, s.box, max_elements, pieces));
    if (count == 0) { EXPECT_TRUE(pieces.empty()) << s.box.to_string(); }
    if (count > 0 && count <= max_elements) {
      // The whole box fits: one piece, the box itself.
      ASSERT_EQ(pieces.size(), 1u) << s.box.to_string() << " max " << max_elements;
      EXPECT_EQ(pieces[0].start, s.box.start);
      EXPECT_EQ(pieces[0].extent, s.box.extent);
    }
    if (pieces.size() > 1) ++multi_piece;
  }
  EXPECT_GT(multi_piece, 500);
}

TEST(SplitBox, KnownSplits) {
  const Box box{{1, 2}, {3, 4}};
  // Rows of 4 fit in 5: one row per piece, trailing dimension whole.
  {
    const auto pieces = split_box(box, 5);
    ASSERT_EQ(pieces.size(), 3u);
    for (std::size_t r = 0; r < 3; ++r) {
      EXPECT_EQ(pieces[r].start, (std::vector<Index>{1 + static_cast<Index>(r), 2}));
      EXPECT_EQ(pieces[r].extent, (std::vector<Index>{1, 4}));
    }
  }
  // Two rows fit in 8 (or 9): pieces of 2 rows, then 1.
  {
    const auto pieces = split_box(box, 9);
    ASSERT_EQ(pieces.size(), 2u);
    EXPECT_EQ(pieces[0].start, (std::vector<Index>{1, 2}));
    EXPECT_EQ(pieces[0].extent, (std::vector<Index>{2, 4}));
    EXPECT_EQ(pieces[1].start, (std::vector<Index>{3, 2}));
    EXPECT_EQ(pieces[1].extent, (std::vector<Index>{1, 4}));
  }
  // A row does not fit in 3: each row in runs of 3 and 1.
  {
    const auto pieces = split_box(box, 3);
    ASSERT_EQ(pieces.size(), 6u);
    for (std::size_t r = 0; r < 3; ++r) {
      EXPECT_EQ(pieces[2 * r].start, (std::vector<Index>{1 + static_cast<Index>(r), 2}));
      EXPECT_EQ(pieces[2 * r].extent, (std::vector<Index>{1, 3}));
      EXPECT_EQ(pieces[2 * r + 1].start, (std::vector<Index>{1 + static_cast<Index>(r), 5}));
      EXPECT_EQ(pieces[2 * r + 1].extent, (std::vector<Index>{1, 1}));
    }
  }
  // Fits whole.
  EXPECT_EQ(split_box(box, 12).size(), 1u);
  // 1-D.
  {
    const auto pieces = split_box(Box{{3}, {10}}, 4);
    ASSERT_EQ(pieces.size(), 3u);
    EXPECT_EQ(pieces[2].start, (std::vector<Index>{11}));
    EXPECT_EQ(pieces[2].extent, (std::vector<Index>{2}));
  }
}

TEST(SplitBox, EmptyAndRankZeroBoxes) {
  for (const Index max_elements : {Index{1}, Index{2}, Index{100}, std::numeric_limits<Index>::max()}) {
    EXPECT_TRUE(split_box(Box{{0}, {0}}, max_elements).empty());
    EXPECT_TRUE(split_box(Box{{0, 2, 1}, {3, 0, 5}}, max_elements).empty());
    EXPECT_TRUE(split_box(Box{{4, 4}, {0, 0}}, max_elements).empty());
    const auto scalar = split_box(Box{}, max_elements);
    ASSERT_EQ(scalar.size(), 1u);
    EXPECT_TRUE(scalar[0].start.empty());
    EXPECT_TRUE(scalar[0].extent.empty());
    EXPECT_EQ(scalar[0].element_count(), 1);
  }
}

TEST(SplitBox, SixtyFourBitBoxes) {
  // 1000 x 2^20 x 2^20 elements (about 2^50): pieces of two rows of 2^40 elements.
  const Index big = Index{1} << 20;
  const Box box{{5, 0, 0}, {1000, big, big}};
  const auto pieces = split_box(box, Index{1} << 41);
  ASSERT_EQ(pieces.size(), 500u);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i].start, (std::vector<Index>{5 + 2 * static_cast<Index>(i), 0, 0}));
    EXPECT_EQ(pieces[i].extent, (std::vector<Index>{2, big, big}));
  }
  EXPECT_EQ(split_box(box, std::numeric_limits<Index>::max()).size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// TensorFiller::fill_box_range

constexpr DType kDTypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16};

TEST(FillBoxRange, EqualsTheSliceOfFillBox) {
  std::mt19937_64 rng(0xf111u);
  const std::vector<Distribution> distributions = {Uniform{-1, 1}, Normal{0.5, 2.0}, TruncNormal{0, 1, -1, 3},
                                                   Constant{0.25}};
  int n = 0;
  for (const DType dtype : kDTypes) {
    for (int i = 0; i < 150; ++i, ++n) {
      const ShapeAndBox s = random_shape_and_box(rng, 4, 9, 30);
      const TensorSpec spec{"t", s.shape, dtype, rng(), distributions[n % distributions.size()]};
      const TensorFiller filler(rng() % 1000, spec);
      const std::size_t size = dtype_size(dtype);
      const Index total = s.box.element_count();
      Bytes whole(static_cast<std::size_t>(total) * size);
      filler.fill_box(s.box, whole);
      for (int r = 0; r < 6; ++r) {
        const Index first = std::uniform_int_distribution<Index>(0, total)(rng);
        const Index count = std::uniform_int_distribution<Index>(0, total - first)(rng);
        Bytes out(static_cast<std::size_t>(count) * size, std::byte{0xCD});
        filler.fill_box_range(s.box, first, count, out);
        const Bytes expected(whole.begin() + static_cast<std::ptrdiff_t>(first * size),
                             whole.begin() + static_cast<std::ptrdiff_t>((first + count) * size));
        ASSERT_EQ(out, expected) << "dtype " << dtype_name(dtype) << " shape " << shape_to_string(s.shape) << " box "
                                 << s.box.to_string() << " range [" << first << ", " << first + count << ")";
      }
      // The intended use: split_box pieces filled one after another rebuild the box.
      const Index max_elements = std::uniform_int_distribution<Index>(1, std::max<Index>(1, total))(rng);
      Bytes pieces_fill;
      for (const Box& piece : split_box(s.box, max_elements)) {
        Bytes part(static_cast<std::size_t>(piece.element_count()) * size);
        filler.fill_box(piece, part);
        pieces_fill.insert(pieces_fill.end(), part.begin(), part.end());
      }
      ASSERT_EQ(pieces_fill, whole) << "box " << s.box.to_string() << " max_elements " << max_elements;
      // And consecutive ranges of the box (bounded runs) rebuild it too.
      Bytes ranges_fill;
      for (Index first = 0; first < total; first += max_elements) {
        const Index count = std::min(max_elements, total - first);
        Bytes part(static_cast<std::size_t>(count) * size);
        filler.fill_box_range(s.box, first, count, part);
        ranges_fill.insert(ranges_fill.end(), part.begin(), part.end());
      }
      ASSERT_EQ(ranges_fill, whole) << "box " << s.box.to_string();
    }
  }
}

TEST(FillBoxRange, ScalarTensor) {
  const TensorSpec spec{"scalar", {}, DType::f64, 9, Normal{0, 1}};
  const TensorFiller filler(5, spec);
  Bytes whole(8);
  filler.fill_box(Box{}, whole);
  Bytes one(8);
  filler.fill_box_range(Box{}, 0, 1, one);
  EXPECT_EQ(one, whole);
  Bytes none;
  EXPECT_NO_THROW(filler.fill_box_range(Box{}, 0, 0, none));
  EXPECT_NO_THROW(filler.fill_box_range(Box{}, 1, 0, none));
  EXPECT_THROW(filler.fill_box_range(Box{}, 1, 1, one), Error);
}

void expect_range_error(const TensorFiller& filler, const Box& box, Index first, Index count, std::size_t bytes,
                        const std::vector<std::string>& parts) {
  Bytes out(bytes);
  try {
    filler.fill_box_range(box, first, count, out);
    ADD_FAILURE() << "no error for box " << box.to_string() << " range " << first << " + " << count << ", " << bytes
                  << " bytes";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << e.what();
    EXPECT_THAT(std::string(e.what()), HasSubstr("'emb.weight'"));
    for (const auto& p : parts) EXPECT_THAT(std::string(e.what()), HasSubstr(p));
  }
}

TEST(FillBoxRange, Errors) {
  const TensorSpec spec{"emb.weight", {6, 5}, DType::bf16, 4, Uniform{0, 1}};
  const TensorFiller filler(1, spec);
  const Box box{{1, 1}, {3, 4}};  // 12 elements
  // Ranges outside the box.
  expect_range_error(filler, box, -1, 2, 4, {"-1"});
  expect_range_error(filler, box, 0, -1, 0, {"-1"});
  expect_range_error(filler, box, 13, 0, 0, {"13"});
  expect_range_error(filler, box, 10, 3, 6, {"10"});
  expect_range_error(filler, box, 0, 13, 26, {"13"});
  expect_range_error(filler, box, std::numeric_limits<Index>::max(), 2, 4, {});
  expect_range_error(filler, box, 2, std::numeric_limits<Index>::max(), 0, {});
  // An output of the wrong size.
  expect_range_error(filler, box, 0, 4, 6, {"6 bytes"});
  expect_range_error(filler, box, 0, 4, 10, {"10 bytes"});
  // Boxes outside the tensor or of the wrong rank.
  expect_range_error(filler, Box{{4, 0}, {3, 1}}, 0, 1, 2, {"not inside"});
  expect_range_error(filler, Box{{0, -1}, {1, 1}}, 0, 1, 2, {"not inside"});
  expect_range_error(filler, Box{{0}, {1}}, 0, 1, 2, {"rank"});
  // The edges are fine.
  Bytes none;
  EXPECT_NO_THROW(filler.fill_box_range(box, 12, 0, none));
  Bytes all(24);
  EXPECT_NO_THROW(filler.fill_box_range(box, 0, 12, all));
  EXPECT_NO_THROW(filler.fill_box_range(Box{{6, 5}, {0, 0}}, 0, 0, none));
}

}  // namespace
}  // namespace shardinit
