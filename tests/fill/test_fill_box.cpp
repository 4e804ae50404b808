// The core property of shardinit: any box (or flat range) of a tensor, filled on its own, equals the
// same region of a whole-tensor fill, bit for bit, for every dtype and distribution; plus 64-bit
// indexing, unaligned flat ranges, zero-element regions, errors, and the 16-bit roundings.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Random123/philox.h>

#include <algorithm>
#include <cmath>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "distributions/half_precision.hpp"
#include "distributions/transforms.hpp"
#include "shardinit/engine/stream.hpp"
#include "shardinit/fill/fill.hpp"

namespace {

using shardinit::Box;
using shardinit::Constant;
using shardinit::Distribution;
using shardinit::DType;
using shardinit::Error;
using shardinit::ErrorKind;
using shardinit::Index;
using shardinit::Normal;
using shardinit::Shape;
using shardinit::TensorFiller;
using shardinit::TensorSpec;
using shardinit::TruncNormal;
using shardinit::Uniform;
using testing::HasSubstr;

using Bytes = std::vector<std::byte>;

constexpr DType kDTypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16};

// Every distribution kind, with parameters valid for all four dtypes (f16 included), degenerate ones
// and far tails among them.
const std::vector<Distribution>& all_distributions() {
  static const std::vector<Distribution> list{
      Constant{0.0},
      Constant{-1.0 / 3},
      Uniform{-0.5, 0.5},
      Uniform{0.0, 1.0},
      Uniform{-1e-3, 2e-3},
      Uniform{3.0, 3.0},
      Normal{0.0, 1.0},
      Normal{0.1, 0.02},
      Normal{1.0, 0.0},
      TruncNormal{0.0, 1.0, -2.0, 2.0},
      TruncNormal{0.0, 0.02, -0.04, 0.04},
      TruncNormal{1.0, 0.5, 2.0, 3.0},
      TruncNormal{0.0, 1.0, 9.0, 10.0},    // far upper tail
      TruncNormal{0.0, 1.0, -10.0, -9.0},  // far lower tail
  };
  return list;
}

Index count_of(const Shape& shape) {
  Index n = 1;
  for (auto e : shape) n *= e;
  return n;
}

std::string describe_case(const TensorSpec& spec, std::uint64_t seed) {
  return "tensor " + spec.name + " shape " + shardinit::shape_to_string(spec.shape) + " dtype " +
         std::string(shardinit::dtype_name(spec.dtype)) + " " + shardinit::describe(spec.distribution) + " seed " +
         std::to_string(seed) + " stream " + std::to_string(spec.stream);
}

Bytes fill_whole(const TensorFiller& filler) {
  const Index total = count_of(filler.spec().shape);
  Bytes out(static_cast<std::size_t>(total) * shardinit::dtype_size(filler.spec().dtype), std::byte{0x5A});
  filler.fill_flat(0, total, out);
  return out;
}

// The bytes of `box` cut out of a whole-tensor buffer, in row-major order of the box; written
// independently of the library (per element: unflatten within the box, flatten within the shape).
Bytes cut_box(const Bytes& whole, const Shape& shape, const Box& box, std::size_t element_size) {
  Bytes out;
  const Index count = count_of(box.extent);
  const std::size_t rank = shape.size();
  for (Index n = 0; n < count; ++n) {
    Index rem = n, flat = 0, stride = 1;
    for (std::size_t d = rank; d-- > 0;) {
      const Index i = box.start[d] + rem % box.extent[d];
      rem /= box.extent[d];
      flat += i * stride;
      stride *= shape[d];
    }
    const auto* p = whole.data() + static_cast<std::size_t>(flat) * element_size;
    out.insert(out.end(), p, p + element_size);
  }
  return out;
}

// First differing element, for readable failures.
std::string first_difference(const Bytes& got, const Bytes& want, std::size_t element_size) {
  if (got.size() != want.size()) return "sizes differ: " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) return "first difference at element " + std::to_string(i / element_size);
  }
  return "equal";
}

Shape random_shape(std::mt19937_64& gen) {
  const int rank = static_cast<int>(gen() % 5);
  static constexpr Index kMaxDim[] = {1, 700, 45, 14, 7};
  Shape shape;
  for (int d = 0; d < rank; ++d) {
    const bool zero = gen() % 12 == 0;
    shape.push_back(zero ? 0 : 1 + static_cast<Index>(gen() % static_cast<std::uint64_t>(kMaxDim[rank])));
  }
  return shape;
}

Box random_box(std::mt19937_64& gen, const Shape& shape) {
  Box box;
  for (Index dim : shape) {
    const Index start = static_cast<Index>(gen() % static_cast<std::uint64_t>(dim + 1));
    const Index extent = static_cast<Index>(gen() % static_cast<std::uint64_t>(dim - start + 1));
    box.start.push_back(start);
    box.extent.push_back(extent);
  }
  return box;
}

// ---- the core property -----------------------------------------------------------------------------

TEST(FillBox, RandomBoxesEqualTheWholeTensorFill) {
  std::mt19937_64 gen(0xB0C5);
  const auto& distributions = all_distributions();
  int cases = 0, boxes = 0, nonempty_boxes = 0;
  long long elements_compared = 0;
  for (int n = 0; n < 448; ++n) {
    TensorSpec spec;
    spec.name = "t" + std::to_string(n);
    spec.shape = random_shape(gen);
    spec.dtype = kDTypes[n % 4];
    spec.distribution = distributions[(n / 4) % distributions.size()];
    spec.stream = gen();
    const std::uint64_t seed = gen();
    SCOPED_TRACE(describe_case(spec, seed));
    const TensorFiller filler(seed, spec);
    const std::size_t esize = shardinit::dtype_size(spec.dtype);
    const Bytes whole = fill_whole(filler);
    ++cases;
    for (int b = 0; b < 4; ++b) {
      const Box box = b == 0 ? Box::whole(spec.shape) : random_box(gen, spec.shape);
      SCOPED_TRACE("box " + box.to_string());
      const Index count = count_of(box.extent);
      Bytes part(static_cast<std::size_t>(count) * esize, std::byte{0xA5});  // differs from the whole's sentinel
      ASSERT_NO_THROW(filler.fill_box(box, part));
      const Bytes want = cut_box(whole, spec.shape, box, esize);
      ASSERT_EQ(part, want) << first_difference(part, want, esize);
      // The one-shot form agrees with the filler.
      if (b == 1) {
        Bytes again(part.size(), std::byte{0x33});
        shardinit::fill_box(seed, spec, box, again);
        ASSERT_EQ(again, part);
      }
      ++boxes;
      if (count > 0) ++nonempty_boxes;
      elements_compared += count;
    }
  }
  EXPECT_GE(cases, 300);
  EXPECT_GE(nonempty_boxes, 900);
  EXPECT_GT(elements_compared, 100'000);
  RecordProperty("cases", cases);
  RecordProperty("boxes", boxes);
}

TEST(FillBox, DifferentStreamsAndSeedsGiveDifferentValues) {
  // Sanity for the property above: the fills are not constant or independent of (seed, stream).
  TensorSpec spec{"w", {64}, DType::f32, 1, Uniform{0, 1}};
  const Bytes a = fill_whole(TensorFiller(1, spec));
  const Bytes b = fill_whole(TensorFiller(2, spec));
  spec.stream = 2;
  const Bytes c = fill_whole(TensorFiller(1, spec));
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  std::vector<float> values(64);
  std::memcpy(values.data(), a.data(), a.size());
  std::sort(values.begin(), values.end());
  EXPECT_EQ(std::unique(values.begin(), values.end()), values.end()) << "64 uniform floats should be distinct";
}

// ---- tensors of more than 2^32 elements -------------------------------------------------------------

// The value of element `flat` from the documented block layout and the reference transforms
// (docs/stream-format.md sections 3-5), independently of fill.cpp.
template <class Real>
Real reference_value(std::uint64_t seed, std::uint64_t stream, const Distribution& distribution, std::uint64_t flat) {
  using shardinit::detail::Lanes;
  constexpr std::uint64_t L = Lanes<Real>::kElementsPerBlock;
  // Counter (lo(B), hi(B), lo(stream), hi(stream)), key (lo(seed), hi(seed)), with Random123 itself.
  const std::uint64_t block = flat / L;
  r123::Philox4x32 philox;
  const auto r = philox(r123::Philox4x32::ctr_type{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                                                    static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}},
                        r123::Philox4x32::key_type{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}});
  const std::array<std::uint32_t, 4> words{r[0], r[1], r[2], r[3]};
  const int lane = static_cast<int>(flat % L);
  if (const auto* u = std::get_if<Uniform>(&distribution)) {
    return shardinit::detail::UniformTransform<Real>(*u)(Lanes<Real>::element_bits(words, lane));
  }
  if (const auto* t = std::get_if<TruncNormal>(&distribution)) {
    return shardinit::detail::TruncNormalTransform<Real>(*t)(Lanes<Real>::element_bits(words, lane));
  }
  const auto& nd = std::get<Normal>(distribution);
  const auto [even, odd] = shardinit::detail::NormalTransform<Real>(nd)(Lanes<Real>::element_bits(words, lane & ~1),
                                                                        Lanes<Real>::element_bits(words, lane | 1));
  return lane % 2 == 0 ? even : odd;
}

TEST(FillBox, HugeTensorBoxesNearTheEndAndAcross2To32) {
  const Shape shape{65536, 65536, 3};  // 12'884'901'888 elements
  const std::uint64_t seed = 0x123456789ull;
  // Boxes near the very end, and one containing flat index 2^32 = (21845, 21845, 1).
  const std::vector<Box> boxes{{{65535, 65500, 0}, {1, 36, 3}},
                               {{65530, 65534, 1}, {6, 2, 2}},
                               {{21845, 21840, 0}, {2, 12, 3}},
                               {{21845, 21845, 1}, {1, 1, 1}}};
  int checked = 0;
  for (const DType dtype : kDTypes) {
    for (const auto& distribution : all_distributions()) {
      const TensorSpec spec{"huge", shape, dtype, shardinit::stream_from_name("huge"), distribution};
      SCOPED_TRACE(describe_case(spec, seed));
      const TensorFiller filler(seed, spec);
      const std::size_t esize = shardinit::dtype_size(dtype);
      const auto strides = shardinit::row_major_strides(shape);
      for (const auto& box : boxes) {
        SCOPED_TRACE(box.to_string());
        Bytes part(static_cast<std::size_t>(count_of(box.extent)) * esize, std::byte{0xA5});
        filler.fill_box(box, part);
        // The same elements as flat runs along the last dimension.
        Bytes runs;
        for (Index i = 0; i < box.extent[0]; ++i) {
          for (Index j = 0; j < box.extent[1]; ++j) {
            const Index flat = (box.start[0] + i) * strides[0] + (box.start[1] + j) * strides[1] + box.start[2];
            ASSERT_GE(flat, 0);
            Bytes run(static_cast<std::size_t>(box.extent[2]) * esize, std::byte{0x5A});
            filler.fill_flat(flat, box.extent[2], run);
            runs.insert(runs.end(), run.begin(), run.end());
          }
        }
        ASSERT_EQ(part, runs) << first_difference(part, runs, esize);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 4 * static_cast<int>(all_distributions().size()) * static_cast<int>(boxes.size()));
}

TEST(FillBox, HugeTensorValuesFollowTheDocumentedLayout) {
  // Independent of fill.cpp and stream.hpp: element i's value at indices past 2^32 (and, in the 2^62-
  // element tensor, past 2^35, where the block number itself needs its high counter word) comes from
  // block floor(i / L), so no index or block number may be truncated to 32 bits.
  const std::uint64_t seed = 0x9900000001ull, stream = 0xFEEDFACECAFEBEEFull;
  const std::vector<Distribution> distributions{Uniform{-1, 1}, Normal{0, 1}, TruncNormal{0, 1, -2, 2},
                                                TruncNormal{0, 1, 9, 10}};
  const Index big = Index{1} << 62;
  const std::vector<std::pair<Shape, std::vector<Index>>> layouts{
      {{65536, 65536, 3}, {(Index{1} << 32) - 5, (Index{1} << 32) + 1, (Index{2} << 32) - 1, 3 * (Index{1} << 32) - 11}},
      {{Index{1} << 31, Index{1} << 31}, {(Index{1} << 35) + 3, (Index{1} << 40) + 7, (Index{1} << 61) + 1, big - 11}},
  };
  int checked = 0;
  for (const auto& [shape, firsts] : layouts) {
    for (const auto& distribution : distributions) {
      for (const Index first : firsts) {
        const Index count = std::min<Index>(11, count_of(shape) - first);
        std::vector<float> f32(static_cast<std::size_t>(count));
        std::vector<double> f64(static_cast<std::size_t>(count));
        TensorFiller(seed, {"huge", shape, DType::f32, stream, distribution})
            .fill_flat(first, count, std::as_writable_bytes(std::span(f32)));
        TensorFiller(seed, {"huge", shape, DType::f64, stream, distribution})
            .fill_flat(first, count, std::as_writable_bytes(std::span(f64)));
        for (Index k = 0; k < count; ++k) {
          const auto flat = static_cast<std::uint64_t>(first + k);
          EXPECT_EQ(std::bit_cast<std::uint32_t>(f32[k]),
                    std::bit_cast<std::uint32_t>(reference_value<float>(seed, stream, distribution, flat)))
              << shardinit::describe(distribution) << " f32 element " << flat;
          EXPECT_EQ(std::bit_cast<std::uint64_t>(f64[k]),
                    std::bit_cast<std::uint64_t>(reference_value<double>(seed, stream, distribution, flat)))
              << shardinit::describe(distribution) << " f64 element " << flat;
          ++checked;
        }
      }
      // No aliasing: element i and element i + 2^32 (i + 2^36 in the big one) differ.
      std::vector<float> a(4), b(4);
      const TensorFiller filler(seed, {"huge", shape, DType::f32, stream, distribution});
      const Index offset = shape.size() == 3 ? Index{1} << 32 : Index{1} << 36;
      filler.fill_flat(100, 4, std::as_writable_bytes(std::span(a)));
      filler.fill_flat(100 + offset, 4, std::as_writable_bytes(std::span(b)));
      EXPECT_NE(a, b) << shardinit::describe(distribution);
    }
  }
  EXPECT_EQ(checked, 2 * 4 * 4 * 11);
}

// ---- flat ranges with unaligned starts --------------------------------------------------------------

TEST(FillFlat, UnalignedRangesEqualSlicesOfALargerFill) {
  // Odd offsets matter: normal values pair up inside a block (lanes 0-1, 2-3), and blocks hold 4 (f32,
  // bf16, f16) or 2 (f64) elements; 9000-element ranges also cross the 4096-element internal chunks.
  const Index total = 10'007;
  int checked = 0;
  for (const DType dtype : kDTypes) {
    for (const auto& distribution : all_distributions()) {
      const TensorSpec spec{"flat", {total}, dtype, 77, distribution};
      SCOPED_TRACE(describe_case(spec, 5));
      const TensorFiller filler(5, spec);
      const std::size_t esize = shardinit::dtype_size(dtype);
      const Bytes whole = fill_whole(filler);
      std::vector<std::pair<Index, Index>> ranges;
      for (Index first = 0; first < 12; ++first) {
        for (Index count : {1, 2, 3, 5, 7, 8, 13}) ranges.emplace_back(first, count);
      }
      ranges.insert(ranges.end(), {{3, 9000}, {4095, 3}, {4093, 4100}, {1, total - 1}, {total - 3, 3},
                                   {total - 1, 1}, {total, 0}, {0, 0}, {5001, 0}});
      for (const auto& [first, count] : ranges) {
        Bytes part(static_cast<std::size_t>(count) * esize, std::byte{0xA5});
        filler.fill_flat(first, count, part);
        const Bytes want(whole.begin() + first * static_cast<Index>(esize),
                         whole.begin() + (first + count) * static_cast<Index>(esize));
        ASSERT_EQ(part, want) << "first " << first << " count " << count << ": " << first_difference(part, want, esize);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 4 * static_cast<int>(all_distributions().size()) * (12 * 7 + 9));
}

// ---- zero-element regions ----------------------------------------------------------------------------

TEST(FillBox, ZeroElementBoxesAreNoOps) {
  Bytes guard(16, std::byte{0x77});
  const std::span<std::byte> empty(guard.data(), 0);
  int checked = 0;
  for (const DType dtype : kDTypes) {
    const TensorFiller nonempty(3, {"z", {5, 6, 7}, dtype, 1, Normal{0, 1}});
    for (const Box& box : {Box{{0, 0, 0}, {0, 6, 7}}, Box{{1, 2, 3}, {4, 0, 4}}, Box{{0, 0, 7}, {5, 6, 0}},
                           Box{{5, 6, 7}, {0, 0, 0}}}) {
      EXPECT_NO_THROW(nonempty.fill_box(box, empty)) << box.to_string();
      ++checked;
    }
    EXPECT_NO_THROW(nonempty.fill_flat(0, 0, empty));
    EXPECT_NO_THROW(nonempty.fill_flat(210, 0, empty));
    const TensorFiller zero_size(3, {"z0", {4, 0, 3}, dtype, 1, Uniform{0, 1}});
    EXPECT_NO_THROW(zero_size.fill_box(Box::whole({4, 0, 3}), empty));
    EXPECT_NO_THROW(zero_size.fill_flat(0, 0, empty));
    EXPECT_TRUE(fill_whole(zero_size).empty());
  }
  EXPECT_EQ(guard, Bytes(16, std::byte{0x77}));
  EXPECT_EQ(checked, 16);
}

TEST(FillBox, ScalarTensor) {
  for (const DType dtype : kDTypes) {
    const TensorFiller filler(8, {"s", {}, dtype, 3, Normal{0, 1}});
    Bytes a(shardinit::dtype_size(dtype), std::byte{0xA5}), b(a.size(), std::byte{0x5A});
    filler.fill_box(Box{}, a);
    filler.fill_flat(0, 1, b);
    EXPECT_EQ(a, b);
  }
}

// normal with std = 0 is R(mean) in every element, the sign of a zero mean included (mean + 0 * z
// gave +0 for a mean of -0 in about half of them).
TEST(FillBox, NormalWithZeroStdIsTheMeanInEveryElement) {
  for (const DType dtype : kDTypes) {
    for (const double mean : {-0.0, 0.0, 1.5, -3.25}) {
      const TensorFiller filler(8, {"s", {1000}, dtype, 3, Normal{mean, 0}});
      const TensorFiller constant(8, {"c", {1000}, dtype, 4, Constant{mean}});
      Bytes a(1000 * shardinit::dtype_size(dtype)), b(a.size());
      filler.fill_flat(0, 1000, a);
      constant.fill_flat(0, 1000, b);
      EXPECT_EQ(a, b) << shardinit::dtype_name(dtype) << " mean " << mean;
      if (std::signbit(mean)) {
        const std::size_t size = shardinit::dtype_size(dtype);
        EXPECT_NE(static_cast<unsigned>(a[size - 1]) & 0x80u, 0u) << "the first element keeps the sign of -0";
      }
    }
  }
}

// ---- errors --------------------------------------------------------------------------------------------

template <class Fn>
void expect_invalid_argument(Fn&& fn, const std::vector<std::string>& must_contain, const std::string& what) {
  SCOPED_TRACE(what);
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << e.what();
    for (const auto& s : must_contain) EXPECT_THAT(e.what(), HasSubstr(s));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a shardinit::Error: " << e.what();
  }
}

TEST(FillBoxErrors, BoxOutsideTheShapeNamesTheTensor) {
  const TensorFiller filler(1, {"layer.weight", {4, 5}, DType::f32, 1, Uniform{0, 1}});
  const std::vector<Box> outside{{{0, 0}, {5, 5}}, {{3, 0}, {2, 1}}, {{0, 4}, {1, 2}}, {{5, 0}, {0, 0}},
                                 {{-1, 0}, {1, 1}}, {{0, 0}, {-1, 5}}, {{0, 6}, {0, 0}}};
  for (const auto& box : outside) {
    Index count = 1;
    for (auto e : box.extent) count *= std::max<Index>(e, 0);
    Bytes out(static_cast<std::size_t>(count) * 4);
    expect_invalid_argument([&] { filler.fill_box(box, out); }, {"layer.weight"}, "box " + box.to_string());
  }
}

TEST(FillBoxErrors, WrongRankNamesTheTensor) {
  const TensorFiller filler(1, {"layer.weight", {4, 5}, DType::f32, 1, Uniform{0, 1}});
  for (const auto& box : {Box{{0}, {4}}, Box{{0, 0, 0}, {1, 1, 1}}, Box{}, Box{{0, 0}, {1}}}) {
    Bytes out(4);
    expect_invalid_argument([&] { filler.fill_box(box, out); }, {"layer.weight"}, "box " + box.to_string());
  }
}

TEST(FillBoxErrors, WrongOutputSizeNamesTheTensor) {
  for (const DType dtype : kDTypes) {
    const TensorFiller filler(1, {"layer.bias", {4, 5}, dtype, 1, Uniform{0, 1}});
    const std::size_t esize = shardinit::dtype_size(dtype);
    const Box box{{1, 1}, {2, 3}};
    for (const std::size_t bytes : {std::size_t{0}, 6 * esize - 1, 6 * esize + 1, 7 * esize, 5 * esize}) {
      Bytes out(bytes);
      expect_invalid_argument([&] { filler.fill_box(box, out); }, {"layer.bias"},
                              "fill_box with " + std::to_string(bytes) + " bytes");
      expect_invalid_argument([&] { filler.fill_flat(2, 6, out); }, {"layer.bias"},
                              "fill_flat with " + std::to_string(bytes) + " bytes");
    }
  }
}

TEST(FillBoxErrors, FlatRangeOutsideNamesTheTensor) {
  const TensorFiller filler(1, {"emb", {4, 5}, DType::f32, 1, Uniform{0, 1}});
  const std::pair<Index, Index> bad[] = {{-1, 1}, {0, 21}, {20, 1}, {21, 0}, {5, -1}, {19, 2},
                                         {1, std::numeric_limits<Index>::max()}};
  for (const auto& [first, count] : bad) {
    Bytes out(static_cast<std::size_t>(std::clamp<Index>(count, 0, 64)) * 4);
    expect_invalid_argument([&] { filler.fill_flat(first, count, out); }, {"emb"},
                            "first " + std::to_string(first) + " count " + std::to_string(count));
  }
}

TEST(FillBoxErrors, InvalidDistributionNamesTheTensor) {
  expect_invalid_argument([] { TensorFiller(1, {"h.0.attn", {2}, DType::f16, 1, Uniform{0, 1e5}}); },
                          {"h.0.attn", "1e+05"}, "uniform(0, 1e5) in f16");
  expect_invalid_argument([] { TensorFiller(1, {"h.0.mlp", {2}, DType::f32, 1, Normal{0, -1}}); }, {"h.0.mlp"},
                          "negative std");
  expect_invalid_argument([] { TensorFiller(1, {"neg", {2, -3}, DType::f32, 1, Normal{0, 1}}); }, {"neg"},
                          "negative dimension");
}

// ---- bf16 / f16 are the rounded f32 fill ------------------------------------------------------------

TEST(FillBox, HalfPrecisionIsTheRoundedFloatFill) {
  std::mt19937_64 gen(16);
  int checked = 0;
  for (const auto& distribution : all_distributions()) {
    for (int n = 0; n < 6; ++n) {
      const Shape shape = n == 0 ? Shape{1000} : random_shape(gen);
      const std::uint64_t seed = gen(), stream = gen();
      const Index total = count_of(shape);
      std::vector<float> f32(static_cast<std::size_t>(total));
      TensorFiller(seed, {"x", shape, DType::f32, stream, distribution})
          .fill_flat(0, total, std::as_writable_bytes(std::span(f32)));
      std::vector<std::uint16_t> bf16(f32.size(), 0xDEAD), f16(f32.size(), 0xDEAD);
      TensorFiller(seed, {"x", shape, DType::bf16, stream, distribution})
          .fill_flat(0, total, std::as_writable_bytes(std::span(bf16)));
      TensorFiller(seed, {"x", shape, DType::f16, stream, distribution})
          .fill_flat(0, total, std::as_writable_bytes(std::span(f16)));
      for (std::size_t i = 0; i < f32.size(); ++i) {
        ASSERT_EQ(bf16[i], shardinit::detail::bf16_from_f32(f32[i])) << shardinit::describe(distribution) << " element " << i;
        ASSERT_EQ(f16[i], shardinit::detail::f16_from_f32(f32[i])) << shardinit::describe(distribution) << " element " << i;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 14 * 1000);
}

}  // namespace

// ---- threads never change a value -------------------------------------------------------------------

namespace shardinit {
namespace {

TEST(FillThreads, AnyThreadCountGivesTheSameBits) {
  // Large enough that every thread count below is really used: in_parallel gives each thread at
  // least 2^16 elements, and 700'001 elements split into up to 7 parts at odd offsets (normal pairs
  // and Philox blocks straddle the cuts).
  const Index n = 700'001;
  const Distribution distributions[] = {Uniform{-1, 1}, Normal{0, 0.02}, TruncNormal{0, 1, -2, 2}};
  for (const DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    for (const auto& d : distributions) {
      const TensorSpec spec{"threads", {n}, dtype, 99, d};
      const std::size_t bytes = static_cast<std::size_t>(n) * dtype_size(dtype);
      std::vector<std::byte> one(bytes), many(bytes, std::byte{0xA5});
      TensorFiller(5, spec).fill_flat(0, n, one);
      for (const int threads : {2, 3, 7}) {
        TensorFiller(5, spec, FillOptions{threads}).fill_flat(0, n, many);
        EXPECT_EQ(one, many) << describe(d) << " " << dtype_name(dtype) << " threads=" << threads;
        std::fill(many.begin(), many.end(), std::byte{0xA5});
      }
    }
  }
  // Boxes too: a 2-D box split across threads mid-row.
  const TensorSpec spec{"threads.box", {1000, 999}, DType::f32, 7, Normal{0, 1}};
  const Box box{{13, 17}, {900, 901}};
  std::vector<std::byte> one(static_cast<std::size_t>(box.element_count()) * 4), many(one.size());
  TensorFiller(5, spec).fill_box(box, one);
  TensorFiller(5, spec, FillOptions{3}).fill_box(box, many);
  EXPECT_EQ(one, many);
}

TEST(FillThreads, ZeroThreadsIsRefused) {
  try {
    TensorFiller(5, TensorSpec{"w", {4}, DType::f32, 1, Normal{}}, FillOptions{0});
    FAIL() << "threads=0 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("threads=0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace shardinit

namespace shardinit {
namespace {

// An output that is not aligned for the element type goes through the staging buffer, an aligned
// one is generated in place: both must give the same bytes.
TEST(FillAlignment, MisalignedOutputGivesTheSameBytes) {
  const Distribution distributions[] = {Constant{0.5}, Uniform{-1, 1}, Normal{0, 1}, TruncNormal{0, 1, -2, 2}};
  for (const DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    for (const auto& d : distributions) {
      const TensorSpec spec{"aligned", {10007}, dtype, 3, d};
      const TensorFiller filler(8, spec);
      const std::size_t bytes = 10007 * dtype_size(dtype);
      std::vector<std::byte> aligned(bytes), storage(bytes + 1);
      filler.fill_flat(0, 10007, aligned);
      const std::span<std::byte> misaligned(storage.data() + 1, bytes);
      filler.fill_flat(0, 10007, misaligned);
      EXPECT_TRUE(std::equal(aligned.begin(), aligned.end(), misaligned.begin())) << describe(d) << " " << dtype_name(dtype);
    }
  }
}

}  // namespace
}  // namespace shardinit
