// ElementEngine (per-element UniformRandomBitGenerator) and fill_box_custom: word layout against an
// independent Random123 computation, discard(), shard invariance of custom fills driven by
// Boost.Random distributions, and a moment sanity check.

#include <gtest/gtest.h>

#include <Random123/philox.h>

#include <boost/random/normal_distribution.hpp>
#include <boost/random/uniform_real_distribution.hpp>

#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <random>
#include <span>
#include <tuple>
#include <vector>

#include "shardinit/engine/element_engine.hpp"
#include "shardinit/fill/fill.hpp"

namespace {

using shardinit::Box;
using shardinit::ElementEngine;
using shardinit::Index;
using shardinit::Philox4x32;
using shardinit::Shape;

static_assert(std::uniform_random_bit_generator<ElementEngine>);
static_assert(ElementEngine::min() == 0u);
static_assert(ElementEngine::max() == 0xFFFFFFFFu);
static_assert(std::is_same_v<ElementEngine::result_type, std::uint32_t>);

std::array<std::uint32_t, 4> r123_words(std::array<std::uint32_t, 4> c, std::array<std::uint32_t, 2> k) {
  r123::Philox4x32 rng;
  const auto out = rng(r123::Philox4x32::ctr_type{{c[0], c[1], c[2], c[3]}}, r123::Philox4x32::key_type{{k[0], k[1]}});
  return {out[0], out[1], out[2], out[3]};
}

std::uint32_t lo(std::uint64_t x) { return static_cast<std::uint32_t>(x); }
std::uint32_t hi(std::uint64_t x) { return static_cast<std::uint32_t>(x >> 32); }

// custom_key written from docs/stream-format.md section 7 with Random123:
// words 0, 1 of Philox((0, 2^31, lo(stream), hi(stream)), (lo(seed), hi(seed))).
Philox4x32::key_type reference_custom_key(std::uint64_t seed, std::uint64_t stream) {
  const auto w = r123_words({0u, 0x80000000u, lo(stream), hi(stream)}, {lo(seed), hi(seed)});
  return {w[0], w[1]};
}

// Word n of element i's engine.
std::uint32_t reference_word(Philox4x32::key_type key, std::uint64_t element, std::uint64_t n) {
  const std::uint64_t group = n / 4;
  return r123_words({lo(element), hi(element), lo(group), hi(group)}, key)[n % 4];
}

TEST(ElementEngine, CustomKeyIsBlock2To63OfTheStream) {
  std::mt19937_64 gen(1);
  for (int n = 0; n < 1000; ++n) {
    const std::uint64_t seed = gen(), stream = gen();
    ASSERT_EQ(shardinit::custom_key(seed, stream), reference_custom_key(seed, stream)) << seed << ' ' << stream;
  }
}

TEST(ElementEngine, WordsFollowTheDocumentedCounterLayout) {
  std::mt19937_64 gen(2);
  int checked = 0;
  for (int n = 0; n < 200; ++n) {
    const std::uint64_t seed = gen(), stream = gen();
    // Small indices, indices just past 2^32 and huge ones: the high word of i must reach the counter.
    const std::uint64_t element = n % 3 == 0 ? gen() % 1000 : n % 3 == 1 ? (1ull << 32) + gen() % 8 : gen() >> 1;
    const auto key = shardinit::custom_key(seed, stream);
    ElementEngine engine(key, element);
    EXPECT_EQ(engine.element_index(), element);
    for (std::uint64_t w = 0; w < 23; ++w) {  // several groups, ending mid-group
      ASSERT_EQ(engine(), reference_word(key, element, w)) << "element " << element << " word " << w;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 200 * 23);
}

TEST(ElementEngine, ElementsDifferAcrossTheHighIndexWord) {
  const auto key = shardinit::custom_key(7, 11);
  ElementEngine a(key, 5), b(key, 5 + (1ull << 32));
  EXPECT_NE(a(), b());
}

TEST(ElementEngine, DiscardEqualsRepeatedCalls) {
  const auto key = shardinit::custom_key(123, 456);
  int checked = 0;
  for (std::uint64_t before = 0; before < 10; ++before) {
    for (std::uint64_t skip = 0; skip < 20; ++skip) {
      ElementEngine stepped(key, 77), skipped(key, 77);
      for (std::uint64_t i = 0; i < before; ++i) {
        (void)stepped();
        (void)skipped();
      }
      for (std::uint64_t i = 0; i < skip; ++i) (void)stepped();
      skipped.discard(skip);
      for (int i = 0; i < 9; ++i) {
        ASSERT_EQ(skipped(), stepped()) << "before " << before << " skip " << skip << " then word " << i;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 10 * 20 * 9);
}

TEST(ElementEngine, DiscardFarAheadLandsOnTheRightWord) {
  const auto key = shardinit::custom_key(9, 10);
  const std::uint64_t skips[] = {1ull << 34, (1ull << 34) + 1, (1ull << 40) + 3, (1ull << 62) + 2};
  for (std::uint64_t before = 0; before < 6; ++before) {
    for (auto skip : skips) {
      ElementEngine engine(key, 1234);
      for (std::uint64_t i = 0; i < before; ++i) (void)engine();
      engine.discard(skip);
      for (std::uint64_t i = 0; i < 6; ++i) {
        EXPECT_EQ(engine(), reference_word(key, 1234, before + skip + i)) << "before " << before << " skip " << skip;
      }
    }
  }
}

// ---- fill_box_custom ---------------------------------------------------------------------------------

// Row-major copy of `box` out of a whole-tensor buffer, independently of the library's odometer.
template <class T>
std::vector<T> cut_box(const std::vector<T>& whole, const Shape& shape, const Box& box) {
  std::vector<T> out;
  const std::size_t rank = shape.size();
  Index count = 1;
  for (auto e : box.extent) count *= e;
  for (Index n = 0; n < count; ++n) {
    Index rem = n, flat = 0, stride = 1;
    std::vector<Index> idx(rank);
    for (std::size_t d = rank; d-- > 0;) {
      idx[d] = box.start[d] + rem % box.extent[d];
      rem /= box.extent[d];
    }
    for (std::size_t d = rank; d-- > 0;) {
      flat += idx[d] * stride;
      stride *= shape[d];
    }
    out.push_back(whole[static_cast<std::size_t>(flat)]);
  }
  return out;
}

auto normal_element = [](ElementEngine& engine) {
  boost::random::normal_distribution<double> d(0.25, 2.0);
  return d(engine);
};
auto uniform_element = [](ElementEngine& engine) {
  boost::random::uniform_real_distribution<double> d(-3.0, 5.0);
  return d(engine);
};

template <class Element>
void check_box_equals_whole_slice(const Shape& shape, const std::vector<Box>& boxes, Element element) {
  const std::uint64_t seed = 0xC0FFEE, stream = shardinit::stream_from_name("custom");
  Index total = 1;
  for (auto e : shape) total *= e;
  std::vector<double> whole(static_cast<std::size_t>(total), -1e300);
  shardinit::fill_box_custom<double>(seed, stream, shape, Box::whole(shape), whole, element);
  // The whole fill is element-by-element the documented per-element engine.
  const auto key = shardinit::custom_key(seed, stream);
  for (Index i = 0; i < total; ++i) {
    ElementEngine engine(key, static_cast<std::uint64_t>(i));
    ASSERT_EQ(whole[static_cast<std::size_t>(i)], element(engine)) << "element " << i;
  }
  for (const auto& box : boxes) {
    SCOPED_TRACE(box.to_string());
    Index count = 1;
    for (auto e : box.extent) count *= e;
    std::vector<double> part(static_cast<std::size_t>(count), -2e300);
    shardinit::fill_box_custom<double>(seed, stream, shape, box, part, element);
    const auto want = cut_box(whole, shape, box);
    ASSERT_EQ(part.size(), want.size());
    for (std::size_t i = 0; i < part.size(); ++i) {
      ASSERT_EQ(std::bit_cast<std::uint64_t>(part[i]), std::bit_cast<std::uint64_t>(want[i])) << "box element " << i;
    }
  }
}

TEST(FillBoxCustom, TwoDimensionalBoxesEqualWholeTensorSlices) {
  const Shape shape{37, 53};
  const std::vector<Box> boxes{{{0, 0}, {37, 53}}, {{3, 5}, {10, 7}}, {{36, 0}, {1, 53}}, {{0, 52}, {37, 1}},
                               {{20, 11}, {17, 42}}, {{5, 5}, {1, 1}}};
  check_box_equals_whole_slice(shape, boxes, normal_element);
  check_box_equals_whole_slice(shape, boxes, uniform_element);
}

TEST(FillBoxCustom, ThreeDimensionalBoxesEqualWholeTensorSlices) {
  const Shape shape{6, 9, 11};
  const std::vector<Box> boxes{{{1, 2, 3}, {4, 5, 6}}, {{5, 8, 10}, {1, 1, 1}}, {{0, 0, 0}, {6, 9, 11}},
                               {{2, 0, 7}, {3, 9, 4}}, {{0, 4, 0}, {6, 1, 11}}};
  check_box_equals_whole_slice(shape, boxes, normal_element);
  check_box_equals_whole_slice(shape, boxes, uniform_element);
}

TEST(FillBoxCustom, FloatOutputAndScalar) {
  // T = float: the element function's double is converted with static_cast.
  const Shape shape{4, 5};
  std::vector<float> out(20);
  shardinit::fill_box_custom<float>(1, 2, shape, Box::whole(shape), out, uniform_element);
  const auto key = shardinit::custom_key(1, 2);
  for (Index i = 0; i < 20; ++i) {
    ElementEngine engine(key, static_cast<std::uint64_t>(i));
    EXPECT_EQ(out[static_cast<std::size_t>(i)], static_cast<float>(uniform_element(engine)));
  }
  // Rank 0: one element, index 0.
  std::vector<double> scalar(1, 0.0);
  shardinit::fill_box_custom<double>(1, 2, Shape{}, Box{}, scalar, normal_element);
  ElementEngine engine(key, 0);
  EXPECT_EQ(scalar[0], normal_element(engine));
}

TEST(FillBoxCustom, RejectsWrongOutputSizeAndOutsideBoxes) {
  const Shape shape{4, 5};
  std::vector<double> out(19);
  EXPECT_THROW(shardinit::fill_box_custom<double>(1, 2, shape, Box::whole(shape), out, normal_element),
               shardinit::Error);
  std::vector<double> two(2);
  EXPECT_THROW(shardinit::fill_box_custom<double>(1, 2, shape, Box{{3, 4}, {2, 1}}, two, normal_element),
               shardinit::Error);
  // Zero-element box: nothing written, no error.
  std::vector<double> none;
  EXPECT_NO_THROW(shardinit::fill_box_custom<double>(1, 2, shape, Box{{1, 1}, {0, 3}}, none, normal_element));
}

// Moments of a custom fill. For N i.i.d. samples the sample mean has standard error sigma/sqrt(N) and
// the sample variance sqrt((mu4 - sigma^4) / N); every threshold below is 5 of those standard errors.
TEST(FillBoxCustom, MomentsAreSane) {
  const Index n = 200'000;
  const Shape shape{n};
  std::vector<double> v(static_cast<std::size_t>(n));
  const auto moments = [&v] {
    double sum = 0;
    for (double x : v) sum += x;
    const double mean = sum / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    return std::pair{mean, ss / static_cast<double>(v.size() - 1)};
  };
  const double N = static_cast<double>(n);

  // Normal(0.25, 2): sigma^2 = 4, mu4 = 3 sigma^4, so var(s^2) = 2 sigma^4 / N.
  shardinit::fill_box_custom<double>(2024, 1, shape, Box::whole(shape), std::span<double>(v), normal_element);
  auto [mean, var] = moments();
  EXPECT_NEAR(mean, 0.25, 5 * 2.0 / std::sqrt(N));
  EXPECT_NEAR(var, 4.0, 5 * std::sqrt(2 * 16.0 / N));

  // Uniform[-3, 5): width w = 8, sigma^2 = w^2/12, mu4 = w^4/80, so var(s^2) = w^4 (1/80 - 1/144) / N.
  shardinit::fill_box_custom<double>(2024, 1, shape, Box::whole(shape), std::span<double>(v), uniform_element);
  std::tie(mean, var) = moments();
  const double w = 8.0;
  EXPECT_NEAR(mean, 1.0, 5 * (w / std::sqrt(12.0)) / std::sqrt(N));
  EXPECT_NEAR(var, w * w / 12, 5 * std::sqrt(w * w * w * w * (1.0 / 80 - 1.0 / 144) / N));
  for (double x : v) {
    ASSERT_GE(x, -3.0);
    ASSERT_LT(x, 5.0);
  }
}

}  // namespace
