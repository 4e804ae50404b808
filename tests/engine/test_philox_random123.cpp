// Randomized cross-check of shardinit::Philox4x32 against the independent Random123 implementation
// (Debian librandom123-dev), and the layout facts of include/shardinit/engine/stream.hpp.

#include <gtest/gtest.h>

#include <Random123/philox.h>

#include <cstdint>
#include <random>
#include <string_view>

#include "shardinit/engine/philox.hpp"
#include "shardinit/engine/stream.hpp"

namespace {

using shardinit::Philox4x32;

Philox4x32::ctr_type reference10(const Philox4x32::ctr_type& c, const Philox4x32::key_type& k) {
  r123::Philox4x32 rng;
  const r123::Philox4x32::ctr_type rc = {{c[0], c[1], c[2], c[3]}};
  const r123::Philox4x32::key_type rk = {{k[0], k[1]}};
  const auto out = rng(rc, rk);
  return {out[0], out[1], out[2], out[3]};
}

Philox4x32::ctr_type reference7(const Philox4x32::ctr_type& c, const Philox4x32::key_type& k) {
  r123::Philox4x32_R<7> rng;
  const r123::Philox4x32_R<7>::ctr_type rc = {{c[0], c[1], c[2], c[3]}};
  const r123::Philox4x32_R<7>::key_type rk = {{k[0], k[1]}};
  const auto out = rng(rc, rk);
  return {out[0], out[1], out[2], out[3]};
}

TEST(PhiloxRandom123, MatchesOnAMillionRandomInputs) {
  std::mt19937_64 gen(0x5eed'0001'2345'6789ull);
  constexpr int kCases = 1'000'000;
  int mismatches = 0;
  for (int n = 0; n < kCases; ++n) {
    const std::uint64_t a = gen(), b = gen(), k = gen();
    const Philox4x32::ctr_type c{static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(a >> 32),
                                 static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32)};
    const Philox4x32::key_type key{static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(k >> 32)};
    const auto got = Philox4x32{}(c, key);
    const auto want = reference10(c, key);
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << "mismatch at case " << n << " counter " << std::hex << c[0] << ' ' << c[1] << ' ' << c[2]
                    << ' ' << c[3] << " key " << key[0] << ' ' << key[1];
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(PhiloxRandom123, SevenRoundsMatchToo) {
  std::mt19937_64 gen(7);
  int mismatches = 0;
  for (int n = 0; n < 100'000; ++n) {
    const std::uint64_t a = gen(), b = gen(), k = gen();
    const Philox4x32::ctr_type c{static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(a >> 32),
                                 static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32)};
    const Philox4x32::key_type key{static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(k >> 32)};
    if (Philox4x32::rounds<7>(c, key) != reference7(c, key)) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(PhiloxRandom123, StructuredEdgeInputs) {
  // Counters and keys built from all-zero / all-one / single-bit words: carries and multiplier edge cases.
  const std::uint32_t words[] = {0u, 1u, 0x80000000u, 0x7FFFFFFFu, 0xFFFFFFFFu, 0xD2511F53u, 0xCD9E8D57u};
  int checked = 0;
  for (auto w0 : words)
    for (auto w2 : words)
      for (auto k0 : words) {
        const Philox4x32::ctr_type c{w0, ~w0, w2, w2 ^ 0x55555555u};
        const Philox4x32::key_type key{k0, ~k0};
        EXPECT_EQ(Philox4x32{}(c, key), reference10(c, key));
        ++checked;
      }
  EXPECT_EQ(checked, 7 * 7 * 7);
}

// ---- stream.hpp layout ------------------------------------------------------------------------------

TEST(StreamLayout, KeyFromSeedIsLowWordFirst) {
  EXPECT_EQ(shardinit::key_from_seed(0x0123456789ABCDEFull), (Philox4x32::key_type{0x89ABCDEFu, 0x01234567u}));
  EXPECT_EQ(shardinit::key_from_seed(0), (Philox4x32::key_type{0u, 0u}));
  EXPECT_EQ(shardinit::key_from_seed(~0ull), (Philox4x32::key_type{0xFFFFFFFFu, 0xFFFFFFFFu}));
  EXPECT_EQ(shardinit::key_from_seed(42), (Philox4x32::key_type{42u, 0u}));
  static_assert(shardinit::key_from_seed(1ull << 32)[1] == 1u);
}

TEST(StreamLayout, BlockCounterIsBlockThenStreamLowWordsFirst) {
  EXPECT_EQ(shardinit::block_counter(0x1111222233334444ull, 0x5555666677778888ull),
            (Philox4x32::ctr_type{0x77778888u, 0x55556666u, 0x33334444u, 0x11112222u}));
  EXPECT_EQ(shardinit::block_counter(0, 1ull << 63), (Philox4x32::ctr_type{0u, 0x80000000u, 0u, 0u}));
}

TEST(StreamLayout, BlockWordsArePhiloxOfBlockCounter) {
  std::mt19937_64 gen(99);
  for (int n = 0; n < 10'000; ++n) {
    const std::uint64_t seed = gen(), stream = gen(), block = n < 5000 ? gen() : gen() >> 33;
    const Philox4x32::ctr_type c{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                                 static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)};
    const Philox4x32::key_type k{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
    ASSERT_EQ(shardinit::block_words(shardinit::key_from_seed(seed), stream, block), reference10(c, k))
        << "seed " << seed << " stream " << stream << " block " << block;
  }
}

// Independent FNV-1a 64 for the cross-check below (written from the definition, not the header).
std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

TEST(StreamLayout, StreamFromNameIsFnv1a64) {
  EXPECT_EQ(shardinit::stream_from_name(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(shardinit::stream_from_name("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(shardinit::stream_from_name("foobar"), 0x85944171f73967e8ull);
  static_assert(shardinit::stream_from_name("foobar") == 0x85944171f73967e8ull);
  // Bytes >= 0x80 (UTF-8) are hashed as unsigned bytes, not sign-extended chars.
  const std::string_view names[] = {"h.0.mlp.c_fc.weight", "\xc3\xa9t\xc3\xa9", "\xff\x80", "x"};
  for (auto name : names) EXPECT_EQ(shardinit::stream_from_name(name), fnv1a64(name)) << name;
  EXPECT_NE(shardinit::stream_from_name("\xff"), shardinit::stream_from_name("\x7f"));
}

}  // namespace
