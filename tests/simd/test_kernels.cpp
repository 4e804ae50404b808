// The vectorized kernels against the scalar reference, bit for bit, on every instruction set
// Highway compiled and this machine supports (each forced in turn), for many shapes of work:
// unaligned starts, tails shorter than a vector, counters that carry into the high word.

#include <array>
#include <bit>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "distributions/half_precision.hpp"
#include "distributions/transforms.hpp"
#include "shardinit/engine/stream.hpp"
#include "shardinit/fill/fill.hpp"
#include "simd/kernels.hpp"

namespace shardinit {
namespace {

// Runs `check` once per available target, then restores normal dispatch.
template <class Check>
void for_each_target(const Check& check) {
  const auto targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (const auto target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    check();
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(SimdKernels, SeveralTargetsAreExercised) {
  // On x86-64 at least SSE4 and the scalar target are compiled; a machine that supports only one of
  // them would make the other tests vacuous for the vector paths.
  EXPECT_GE(hwy::SupportedAndGeneratedTargets().size(), 2u);
  std::printf("dispatching to %s\n", simd::target_name());
}

TEST(SimdKernels, PhiloxWordsEqualTheScalarEngine) {
  std::mt19937_64 random(11);
  for_each_target([&] {
    for (int trial = 0; trial < 200; ++trial) {
      const auto key = key_from_seed(random());
      const std::uint64_t stream = random();
      // Blocks near 2^32 so that the low counter word wraps inside a vector.
      const std::uint64_t first = trial % 3 == 0 ? (std::uint64_t{1} << 32) - (random() % 40) : random() % (std::uint64_t{1} << 61);
      const std::size_t blocks = random() % 70;
      std::vector<std::uint32_t> words(4 * blocks + 1, 0xDEADBEEF);
      simd::philox_words(key, stream, first, blocks, words.data());
      for (std::size_t b = 0; b < blocks; ++b) {
        const auto expected = block_words(key, stream, first + b);
        for (int j = 0; j < 4; ++j) ASSERT_EQ(words[4 * b + j], expected[j]) << "block " << first + b << " word " << j;
      }
      EXPECT_EQ(words[4 * blocks], 0xDEADBEEFu) << "wrote past the end";
    }
  });
}

TEST(SimdKernels, UniformF32EqualsTheScalarTransform) {
  std::mt19937_64 random(12);
  const Uniform cases[] = {{-1, 1}, {0, 1}, {-0.036084391824351615, 0.036084391824351615}, {1, 1.0000001192092896},
                           {-0.0, 0.5}, {3e38, 3.4e38}, {-1e-40, 1e-40}, {0.1, 0.7}, {5, 5}};
  for_each_target([&] {
    for (const Uniform& u : cases) {
      const detail::UniformTransform<float> t(u);
      if (t.degenerate) continue;
      for (int trial = 0; trial < 20; ++trial) {
        const auto key = key_from_seed(random());
        const std::uint64_t stream = random();
        const std::uint64_t first = trial % 4 == 0 ? (std::uint64_t{1} << 32) - 5 : random() % (std::uint64_t{1} << 40);
        const std::size_t blocks = random() % 100;
        std::vector<float> out(4 * blocks);
        simd::uniform_f32(t, key, stream, first, blocks, out.data());
        for (std::size_t b = 0; b < blocks; ++b) {
          const auto w = block_words(key, stream, first + b);
          for (int j = 0; j < 4; ++j) {
            const float expected = t(w[j]);
            ASSERT_EQ(std::memcmp(&out[4 * b + j], &expected, 4), 0)
                << describe(u) << " block " << first + b << " lane " << j << ": " << out[4 * b + j] << " vs " << expected;
          }
        }
      }
    }
  });
}

// The same for f64 (two elements per block, 53 bits each), including blocks just below the carry
// into the counter's high word and bounds that make the clamp and the rounding matter.
TEST(SimdKernels, UniformF64EqualsTheScalarTransform) {
  std::mt19937_64 random(21);
  const Uniform cases[] = {{-1, 1}, {0, 1}, {-0.036084391824351615, 0.036084391824351615}, {1, 1 + 0x1p-50},
                           {-0.0, 0.5}, {1.7e308, 1.79e308}, {-1e-310, 1e-310}, {0.1, 0.7}, {5, 5}};
  for_each_target([&] {
    for (const Uniform& u : cases) {
      const detail::UniformTransform<double> t(u);
      if (t.degenerate) continue;
      for (int trial = 0; trial < 20; ++trial) {
        const auto key = key_from_seed(random());
        const std::uint64_t stream = random();
        const std::uint64_t first = trial % 4 == 0 ? (std::uint64_t{1} << 32) - 5 : random() % (std::uint64_t{1} << 40);
        const std::size_t blocks = random() % 100;
        std::vector<double> out(2 * blocks);
        simd::uniform_f64(t, key, stream, first, blocks, out.data());
        for (std::size_t b = 0; b < blocks; ++b) {
          const auto w = block_words(key, stream, first + b);
          for (int j = 0; j < 2; ++j) {
            const double expected = t(detail::Lanes<double>::element_bits(w, j));
            ASSERT_EQ(std::memcmp(&out[2 * b + j], &expected, 8), 0)
                << describe(u) << " block " << first + b << " element " << j << ": " << out[2 * b + j] << " vs " << expected;
          }
        }
      }
    }
  });
}

// Box-Muller on chosen words: the extremes of the radius (u = 2^-33 and u = 1) and angles on every
// quadrant and reflection boundary, plus random words; mean and std that make the affine step round.
TEST(SimdKernels, NormalF32EqualsTheScalarTransformOnEdgeWords) {
  std::vector<std::uint32_t> radius{0u, 1u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFEu, 0xFFFFFFFFu, 0x12345678u};
  std::vector<std::uint32_t> angle;
  for (std::uint32_t q = 0; q < 4; ++q) {
    for (const std::uint32_t m : {0u, 1u, 0x1FFFFFu, 0x200000u, 0x200001u, 0x3FFFFFu}) {
      for (const std::uint32_t low : {0u, 0xFFu}) angle.push_back(((q << 22 | m) << 8) | low);
    }
  }
  std::mt19937 random(14);
  for (int i = 0; i < 500; ++i) {
    radius.push_back(random());
    angle.push_back(random());
  }
  // Blocks of (radius, angle, radius, angle) covering every combination in some lane position.
  std::vector<std::uint32_t> words;
  for (std::size_t i = 0; i < radius.size(); ++i) {
    for (std::size_t j = 0; j < angle.size(); j += 3) {
      words.insert(words.end(), {radius[i], angle[j], radius[(i + j) % radius.size()], angle[(j + i) % angle.size()]});
    }
  }
  const std::size_t blocks = words.size() / 4;
  for (const Normal n : {Normal{0, 1}, Normal{0.5, 2}, Normal{-3, 0.02}}) {
    const detail::NormalTransform<float> reference(n);
    for_each_target([&] {
      std::vector<float> out(words.size());
      simd::normal_f32_from_words(reference, words.data(), blocks, out.data());
      for (std::size_t b = 0; b < blocks; ++b) {
        for (int pair = 0; pair < 2; ++pair) {
          const auto [even, odd] = reference(words[4 * b + 2 * pair], words[4 * b + 2 * pair + 1]);
          ASSERT_EQ(std::memcmp(&out[4 * b + 2 * pair], &even, 4), 0) << describe(n) << " block " << b << " pair " << pair;
          ASSERT_EQ(std::memcmp(&out[4 * b + 2 * pair + 1], &odd, 4), 0) << describe(n) << " block " << b << " pair " << pair;
        }
      }
    });
  }
}

// The kernels that write bf16 from registers (Philox, the transform and the rounding fused) against
// the scalar transform and conversion, on random keys and counters that carry into the high word;
// the normal cases include a mean and std that overflow binary32 (infinities, and inf - inf), and a
// NaN mean whose binary32 payload (0x7FC18001) rounds up when rounded as a number: the NaN must be
// quieted by truncation, as detail::bf16_from_f32 does.
TEST(SimdKernels, FusedBf16KernelsEqualTheScalarReference) {
  std::mt19937_64 random(15);
  const auto check = [&](const auto& transform, const auto& kernel, const auto& reference, const char* what) {
    for (int trial = 0; trial < 30; ++trial) {
      const auto key = key_from_seed(random());
      const std::uint64_t stream = random();
      const std::uint64_t first = trial % 3 == 0 ? (std::uint64_t{1} << 32) - (random() % 40) : random() % (std::uint64_t{1} << 50);
      const std::size_t blocks = random() % 150;
      std::vector<std::uint16_t> out(4 * blocks + 1, 0xBEEF);
      kernel(transform, key, stream, first, blocks, out.data());
      for (std::size_t b = 0; b < blocks; ++b) {
        const auto expected = reference(transform, block_words(key, stream, first + b));
        for (int j = 0; j < 4; ++j) ASSERT_EQ(out[4 * b + j], expected[j]) << what << " block " << first + b << " element " << j;
      }
      EXPECT_EQ(out[4 * blocks], 0xBEEF) << what << ": wrote past the end";
    }
  };
  const auto uniform_reference = [](const detail::UniformTransform<float>& t, const Philox4x32::ctr_type& w) {
    std::array<std::uint16_t, 4> v;
    for (int j = 0; j < 4; ++j) v[j] = detail::bf16_from_f32(t(w[j]));
    return v;
  };
  const auto normal_reference = [](const detail::NormalTransform<float>& t, const Philox4x32::ctr_type& w) {
    std::array<std::uint16_t, 4> v;
    for (int pair = 0; pair < 2; ++pair) {
      const auto [even, odd] = t(w[2 * pair], w[2 * pair + 1]);
      v[2 * pair] = detail::bf16_from_f32(even);
      v[2 * pair + 1] = detail::bf16_from_f32(odd);
    }
    return v;
  };
  for_each_target([&] {
    for (const Uniform u : {Uniform{-1, 1}, Uniform{0.1, 0.7}, Uniform{-1e-40, 1e-40}, Uniform{3e38, 3.4e38}}) {
      check(detail::UniformTransform<float>(u), simd::uniform_bf16, uniform_reference, "uniform");
    }
    const double nan_mean = std::bit_cast<double>(std::uint64_t{0x7FF0000000000000} | std::uint64_t{0x418001} << 29);
    for (const Normal n : {Normal{0, 1}, Normal{0.5, 2}, Normal{-3, 0.02}, Normal{3e38, 1e38}, Normal{1e39, 1e39},
                           Normal{nan_mean, 1}}) {
      check(detail::NormalTransform<float>(n), simd::normal_bf16, normal_reference, "normal");
    }
  });
}

// The central inverse-CDF method on chosen words (u and 1 - u at their extremes, the switch between
// the lower and upper branch) for intervals in the middle, in either tail, tiny std and mean outside.
TEST(SimdKernels, TruncNormalF32EqualsTheScalarTransformOnEdgeWords) {
  std::vector<std::uint32_t> words{0u, 1u, 2u, 0x7FFFFFFEu, 0x7FFFFFFFu, 0x80000000u, 0x80000001u, 0xFFFFFFFEu, 0xFFFFFFFFu};
  std::mt19937 random(15);
  while (words.size() % 4 != 0 || words.size() < 4000) words.push_back(random());
  const TruncNormal cases[] = {{0, 1, -2, 2},     {0, 1, 6, 7.9},   {0, 0.002, -2, 2}, {3, 1, -1, 0},
                               {0, 1, -7.9, -6}, {0, 1, -0.5, 3}, {0.25, 0.5, -0.5, 1.75}, {0, 1, 0, 0.4}};
  for (const TruncNormal& t : cases) {
    const detail::TruncNormalTransform<float> reference(t);
    ASSERT_EQ(reference.method, detail::TruncNormalTransform<float>::Method::central) << describe(t);
    for_each_target([&] {
      std::vector<float> out(words.size());
      simd::trunc_normal_f32_from_words(reference, words.data(), words.size() / 4, out.data());
      for (std::size_t e = 0; e < words.size(); ++e) {
        const float expected = reference(words[e]);
        ASSERT_EQ(std::memcmp(&out[e], &expected, 4), 0)
            << describe(t) << " word " << std::hex << words[e] << ": " << out[e] << " vs " << expected;
      }
    });
  }
}

// The f32 bit patterns `patterns`, topped up with random ones (seed `seed`) to `total`, converted by
// the vectorized `kernel` on every target: each result must be the scalar `reference`'s.
template <class Kernel, class Reference>
void expect_conversion_equals_reference(std::vector<std::uint32_t> patterns, std::size_t total, unsigned seed,
                                        const Kernel& kernel, const Reference& reference) {
  std::mt19937 random(seed);
  while (patterns.size() < total) patterns.push_back(random());
  std::vector<float> values(patterns.size());
  std::memcpy(values.data(), patterns.data(), 4 * patterns.size());
  for_each_target([&] {
    std::vector<std::uint16_t> out(values.size());
    kernel(values.data(), values.size(), out.data());
    for (std::size_t i = 0; i < values.size(); ++i) {
      ASSERT_EQ(out[i], reference(values[i])) << std::hex << "f32 bits " << patterns[i];
    }
  });
}

// bf16 conversion on the values where rounding is delicate: ties (even and odd), the largest values
// that round to infinity or not, subnormals (which the hardware instruction would flush), NaNs.
TEST(SimdKernels, Bf16ConversionEqualsTheScalarReference) {
  std::vector<std::uint32_t> patterns{0x00000000u, 0x80000000u, 0x00000001u, 0x007FFFFFu, 0x00008000u, 0x00018000u,
                                      0x3F808000u, 0x3F818000u, 0x3F807FFFu, 0x7F7F7FFFu, 0x7F7F8000u, 0x7F7FFFFFu,
                                      0x7F800000u, 0xFF800000u, 0x7F800001u, 0x7FC00000u, 0xFFFFFFFFu, 0x80008000u};
  expect_conversion_equals_reference(patterns, 5003, 16, simd::bf16_from_f32, detail::bf16_from_f32);
}

// f16 conversion on every exponent that matters (subnormal results, the normal range, overflow) with
// the dropped bits at and around their halfway point, plus signs, NaNs, infinities and random
// patterns: each must give detail::f16_from_f32's bits.
TEST(SimdKernels, F16ConversionEqualsTheScalarReference) {
  std::vector<std::uint32_t> patterns{0x00000000u, 0x80000000u, 0x00000001u, 0x007FFFFFu, 0x33000000u, 0x33000001u,
                                      0x32FFFFFFu, 0x387FFFFFu, 0x38800000u, 0x477FEFFFu, 0x477FF000u, 0x477FFFFFu,
                                      0x7F800000u, 0xFF800000u, 0x7F800001u, 0x7FC00000u, 0xFFFFFFFFu, 0x7F7FFFFFu};
  for (std::uint32_t exponent = 96; exponent <= 145; ++exponent) {
    for (const std::uint32_t low : {0x0000u, 0x0001u, 0x0FFFu, 0x1000u, 0x1001u, 0x1FFFu, 0x2000u, 0x3000u}) {
      for (const std::uint32_t high : {0x000000u, 0x002000u, 0x3FE000u, 0x7FE000u, 0x7FC000u}) {
        for (const std::uint32_t sign : {0u, 0x80000000u}) patterns.push_back(sign | exponent << 23 | high | low);
      }
    }
  }
  // Halfway points of every subnormal shift: bit (shift - 1) set, the bits below it clear.
  for (std::uint32_t shift = 14; shift <= 24; ++shift) {
    for (const std::uint32_t odd : {0u, 1u}) {
      const std::uint32_t significand = 0x00800000u | odd << shift | 1u << (shift - 1);
      patterns.push_back((126u - shift) << 23 | (significand & 0x007FFFFFu));
    }
  }
  expect_conversion_equals_reference(patterns, 20003, 17, simd::f16_from_f32, detail::f16_from_f32);
}

// Whole fills with the kernels on and off: every distribution and dtype, unaligned ranges and
// misaligned outputs.
TEST(SimdKernels, FillsEqualTheScalarReference) {
  const Distribution distributions[] = {Constant{0.25}, Uniform{-2, 3}, Normal{0.5, 2}, TruncNormal{0, 1, -2, 2},
                                        TruncNormal{0, 1, 9, 10}, TruncNormal{0, 1, 0.5, 0.5001}};
  std::mt19937_64 random(13);
  for_each_target([&] {
    for (const DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      for (const auto& d : distributions) {
        const TensorSpec spec{"simd", {1 << 20}, dtype, random(), d};
        const TensorFiller filler(random(), spec);
        for (int trial = 0; trial < 6; ++trial) {
          const Index first = static_cast<Index>(random() % 5000);
          const Index count = static_cast<Index>(random() % 3000) + (trial == 0 ? 0 : 1);
          const std::size_t bytes = static_cast<std::size_t>(count) * dtype_size(dtype);
          // Odd trials write to a misaligned output (one byte in), which takes other store paths.
          const std::size_t shift = trial % 2;
          std::vector<std::byte> storage(bytes + shift), reference(bytes);
          const std::span<std::byte> out(storage.data() + shift, bytes);
          filler.fill_flat(first, count, out);
          const std::vector<std::byte> vectorized(out.begin(), out.end());
          simd::set_enabled(false);
          filler.fill_flat(first, count, reference);
          simd::set_enabled(true);
          ASSERT_EQ(vectorized, reference) << describe(d) << " " << dtype_name(dtype) << " [" << first << ", +" << count << ")";
        }
      }
    }
  });
}

}  // namespace
}  // namespace shardinit
