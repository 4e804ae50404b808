// Known-answer tests for shardinit::Philox4x32, driven by the Random123 reference vectors in
// tests/data/philox_kat_vectors.txt. Every "philox4x32" line is checked (7 and 10 rounds through
// Philox4x32::rounds<R>, and 10 rounds through operator() as well); lines of the other Philox
// variants are parsed and skipped. The test fails if the file yields no philox4x32 vectors, so it
// cannot pass vacuously.

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "shardinit/engine/philox.hpp"

namespace {

using shardinit::Philox4x32;

struct KatVector {
  int line = 0;
  int rounds = 0;
  Philox4x32::ctr_type counter{};
  Philox4x32::key_type key{};
  Philox4x32::ctr_type expected{};
};

std::uint32_t parse_word(const std::string& token, int line) {
  std::size_t used = 0;
  const unsigned long long value = std::stoull(token, &used, 16);
  if (used != token.size() || token.size() != 8 || value > 0xFFFFFFFFull) {
    ADD_FAILURE() << "line " << line << ": bad 32-bit hex word '" << token << "'";
  }
  return static_cast<std::uint32_t>(value);
}

// Parses the philox4x32 lines: NAME ROUNDS CTR0..CTR3 KEY0 KEY1 OUT0..OUT3.
std::vector<KatVector> load_philox4x32_vectors() {
  const std::string path = std::string(SHARDINIT_TEST_DATA_DIR) + "/philox_kat_vectors.txt";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<KatVector> vectors;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.empty() || text[0] == '#') continue;
    std::istringstream fields(text);
    std::string name;
    fields >> name;
    if (name != "philox4x32") continue;
    KatVector v;
    v.line = line;
    fields >> v.rounds;
    std::vector<std::string> words;
    for (std::string w; fields >> w;) words.push_back(w);
    if (words.size() != 10) {
      ADD_FAILURE() << path << ":" << line << ": expected 10 words after the round count, got " << words.size();
      continue;
    }
    for (int i = 0; i < 4; ++i) v.counter[i] = parse_word(words[i], line);
    for (int i = 0; i < 2; ++i) v.key[i] = parse_word(words[4 + i], line);
    for (int i = 0; i < 4; ++i) v.expected[i] = parse_word(words[6 + i], line);
    vectors.push_back(v);
  }
  return vectors;
}

std::string hex(const Philox4x32::ctr_type& w) {
  std::ostringstream s;
  s << std::hex;
  for (auto x : w) s << x << ' ';
  return s.str();
}

TEST(PhiloxKat, FileHasPhilox4x32VectorsForBothRoundCounts) {
  const auto vectors = load_philox4x32_vectors();
  int seven = 0, ten = 0;
  for (const auto& v : vectors) {
    if (v.rounds == 7) ++seven;
    if (v.rounds == 10) ++ten;
  }
  EXPECT_GE(seven, 3) << "no (or too few) philox4x32 7-round vectors";
  EXPECT_GE(ten, 3) << "no (or too few) philox4x32 10-round vectors";
  EXPECT_EQ(static_cast<std::size_t>(seven + ten), vectors.size()) << "unexpected round count in file";
}

TEST(PhiloxKat, RoundsTemplateMatchesEveryVector) {
  const auto vectors = load_philox4x32_vectors();
  ASSERT_FALSE(vectors.empty()) << "no philox4x32 lines in the known-answer file";
  int checked = 0;
  for (const auto& v : vectors) {
    SCOPED_TRACE("line " + std::to_string(v.line) + ", rounds " + std::to_string(v.rounds));
    Philox4x32::ctr_type got{};
    if (v.rounds == 7) {
      got = Philox4x32::rounds<7>(v.counter, v.key);
    } else if (v.rounds == 10) {
      got = Philox4x32::rounds<10>(v.counter, v.key);
    } else {
      ADD_FAILURE() << "unsupported round count " << v.rounds;
      continue;
    }
    EXPECT_EQ(got, v.expected) << "got " << hex(got) << " expected " << hex(v.expected);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(vectors.size()));
}

TEST(PhiloxKat, CallOperatorIsTenRounds) {
  const auto vectors = load_philox4x32_vectors();
  int checked = 0;
  for (const auto& v : vectors) {
    if (v.rounds != 10) continue;
    SCOPED_TRACE("line " + std::to_string(v.line));
    const auto got = Philox4x32{}(v.counter, v.key);
    EXPECT_EQ(got, v.expected) << "got " << hex(got) << " expected " << hex(v.expected);
    ++checked;
  }
  ASSERT_GT(checked, 0) << "no 10-round philox4x32 lines in the known-answer file";
  static_assert(Philox4x32::kRounds == 10);
}

// The engine is constexpr: the all-zero vector (the first philox4x32-10 line of the file) is also
// checked at compile time, so a non-constexpr change or a wrong constant breaks the build.
constexpr Philox4x32::ctr_type kZeroOut = Philox4x32{}({0, 0, 0, 0}, {0, 0});
static_assert(kZeroOut[0] == 0x6627e8d5u && kZeroOut[1] == 0xe169c58du && kZeroOut[2] == 0xbc57ac4cu &&
              kZeroOut[3] == 0x9b00dbd8u);

TEST(PhiloxKat, SevenAndTenRoundsDiffer) {
  // Guards against rounds<R> ignoring R.
  const Philox4x32::ctr_type c{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
  const Philox4x32::key_type k{0xa4093822u, 0x299f31d0u};
  EXPECT_NE(Philox4x32::rounds<7>(c, k), Philox4x32::rounds<10>(c, k));
  EXPECT_EQ(Philox4x32::rounds<10>(c, k), Philox4x32{}(c, k));
}

}  // namespace
