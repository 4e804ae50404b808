// Hugging Face sharding: sizes as huggingface_hub / transformers read them, the split rule of
// huggingface_hub's split_state_dict_into_shards_factory on cases worked by hand, file names, and the
// index text exactly as Python's json.dump(index, f, indent=2) writes it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/format/hf_sharding.hpp"

namespace shardinit {
namespace {

using ::testing::HasSubstr;
using Shards = std::vector<std::vector<std::size_t>>;

TEST(ShardSize, DecimalUnitsArePowersOfTenBinaryUnitsPowersOfTwo) {
  EXPECT_EQ(parse_shard_size("500MB"), 500'000'000u);
  EXPECT_EQ(parse_shard_size("5GB"), 5'000'000'000u);
  EXPECT_EQ(parse_shard_size("2GiB"), 2u << 30);
  EXPECT_EQ(parse_shard_size("3KiB"), 3u * 1024);
  EXPECT_EQ(parse_shard_size("1TiB"), std::uint64_t{1} << 40);
  EXPECT_EQ(parse_shard_size("1TB"), 1'000'000'000'000u);
  EXPECT_EQ(parse_shard_size("10kb"), 10'000u);  // huggingface_hub upper-cases the unit
  EXPECT_EQ(parse_shard_size(" 7 MB "), 7'000'000u);
  EXPECT_EQ(parse_shard_size("123"), 123u);
  EXPECT_EQ(parse_shard_size("123B"), 123u);
  EXPECT_EQ(parse_shard_size("1.5GB"), 1'500'000'000u);
  EXPECT_EQ(parse_shard_size("0.5KiB"), 512u);
  EXPECT_EQ(parse_shard_size("1.0000001KB"), 1000u);  // int(1.0000001 * 1000) in Python: truncated
  EXPECT_EQ(parse_shard_size(".5MB"), 500'000u);
}

TEST(ShardSize, BadSizesNameTheText) {
  for (const char* bad : {"", "MB", "5XB", "5 G B", "1.2.3GB", "0MB", "0", "-5MB", "5e3MB", "99999999999TB", "GB5"}) {
    try {
      (void)parse_shard_size(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
      EXPECT_THAT(e.what(), HasSubstr("max shard size \"" + std::string(bad) + "\"")) << bad;
    }
  }
}

// Each case worked by hand from the rule in huggingface_hub/serialization/_base.py (lines 98-141 at
// ee0a4510): greedy in state-dict order; a tensor above the limit is appended as its own shard at once,
// the current shard staying open; one that would take the current shard past the limit closes it.
TEST(SplitIntoShards, CasesWorkedByHand) {
  EXPECT_EQ(split_into_shards({}, 10), Shards{});
  EXPECT_EQ(split_into_shards({4}, 10), (Shards{{0}}));
  EXPECT_EQ(split_into_shards({3, 3, 3}, 6), (Shards{{0, 1}, {2}}));
  EXPECT_EQ(split_into_shards({2, 2, 2}, 6), (Shards{{0, 1, 2}}));      // exact fit: 6 is not > 6
  EXPECT_EQ(split_into_shards({6, 1}, 6), (Shards{{0}, {1}}));          // a tensor exactly the limit
  EXPECT_EQ(split_into_shards({1, 10, 2}, 5), (Shards{{1}, {0, 2}}));   // the big one's shard comes first
  EXPECT_EQ(split_into_shards({10}, 5), (Shards{{0}}));
  EXPECT_EQ(split_into_shards({10, 1, 10, 1}, 5), (Shards{{0}, {2}, {1, 3}}));
  EXPECT_EQ(split_into_shards({4, 4, 10, 4}, 5), (Shards{{0}, {2}, {1}, {3}}));
  EXPECT_EQ(split_into_shards({0, 0, 5, 0}, 5), (Shards{{0, 1, 2, 3}}));
  EXPECT_EQ(split_into_shards({5, 0, 1}, 5), (Shards{{0, 1}, {2}}));
}

TEST(SplitIntoShards, EveryTensorOnceAndNoShardAboveTheLimitButALoneBigTensor) {
  std::vector<std::uint64_t> sizes;
  std::uint64_t x = 12345;
  for (int i = 0; i < 500; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    sizes.push_back((x >> 33) % 300);
  }
  for (std::uint64_t limit : {1u, 50u, 299u, 300u, 1000u, 200000u}) {
    const Shards shards = split_into_shards(sizes, limit);
    std::vector<int> seen(sizes.size(), 0);
    for (const auto& shard : shards) {
      ASSERT_FALSE(shard.empty());
      std::uint64_t total = 0;
      for (std::size_t i : shard) {
        ++seen[i];
        total += sizes[i];
      }
      if (shard.size() > 1) {
        EXPECT_LE(total, limit);
      }
    }
    for (int s : seen) EXPECT_EQ(s, 1);
  }
}

TEST(HfShardFileName, OneShardHasNoSuffix) {
  EXPECT_EQ(hf_shard_file_name(0, 1), "model.safetensors");
  EXPECT_EQ(hf_shard_file_name(0, 2), "model-00001-of-00002.safetensors");
  EXPECT_EQ(hf_shard_file_name(11, 123), "model-00012-of-00123.safetensors");
}

// json.dump({"metadata": {"total_size": 42, "k": "v\"é"}, "weight_map": {"b": "f2", "a": "f1"}}, f, indent=2)
TEST(HfIndexJson, AsPythonsJsonDumpWithIndent2) {
  EXPECT_EQ(hf_index_json(42, {{"k", "v\"\xc3\xa9"}}, {{"b", "f2"}, {"a", "f1"}}),
            "{\n"
            "  \"metadata\": {\n"
            "    \"total_size\": 42,\n"
            "    \"k\": \"v\\\"\\u00e9\"\n"
            "  },\n"
            "  \"weight_map\": {\n"
            "    \"b\": \"f2\",\n"
            "    \"a\": \"f1\"\n"
            "  }\n"
            "}");
  EXPECT_EQ(hf_index_json(0, {}, {}), "{\n  \"metadata\": {\n    \"total_size\": 0\n  },\n  \"weight_map\": {}\n}");
}

TEST(HfIndex, ParsesWhatItWritesAndRefusesOtherText) {
  const HfIndex index = parse_hf_index(hf_index_json(7, {{"x", "y"}}, {{"t1", "a"}, {"t0", "b"}}), "i.json");
  EXPECT_EQ(index.total_size, 7u);
  EXPECT_EQ(index.metadata, (std::vector<std::pair<std::string, std::string>>{{"x", "y"}}));
  EXPECT_EQ(index.weight_map, (std::vector<std::pair<std::string, std::string>>{{"t0", "b"}, {"t1", "a"}}));
  for (const char* bad : {"", "[]", "{}", "{\"weight_map\": []}", "{\"weight_map\": {\"t\": 1}}",
                          "{\"metadata\": {\"total_size\": -1}, \"weight_map\": {}}"}) {
    EXPECT_THROW((void)parse_hf_index(bad, "i.json"), Error) << bad;
  }
}

// The split an index records, whatever size wrote it: read back from the index of every split
// split_into_shards makes of a few tensors, and refused (naming the tensor or file) when the weight
// map is not a split of the names.
TEST(HfIndexSplit, IsTheSplitTheIndexWasWrittenFromAndNamesWhatIsWrong) {
  const std::vector<std::string> names{"w", "v", "b", "e"};
  const std::vector<std::uint64_t> sizes{40, 8, 30, 0};
  for (std::uint64_t limit : {1, 8, 30, 38, 40, 48, 77, 78, 100}) {
    const Shards shards = split_into_shards(sizes, limit);
    if (shards.size() < 2) continue;  // one shard has no index
    std::vector<std::pair<std::string, std::string>> weight_map;
    for (std::size_t s = 0; s < shards.size(); ++s) {
      for (std::size_t i : shards[s]) weight_map.emplace_back(names[i], hf_shard_file_name(s, shards.size()));
    }
    const HfIndexSplit found = split_of_index(parse_hf_index(hf_index_json(78, {}, weight_map), "i"), names);
    ASSERT_TRUE(found.split.has_value()) << limit << ": " << found.problem;
    Shards sorted = shards;
    for (auto& shard : sorted) std::sort(shard.begin(), shard.end());
    EXPECT_EQ(*found.split, sorted) << limit;
  }
  const auto problem = [&](const std::vector<std::pair<std::string, std::string>>& weight_map) {
    const HfIndexSplit found = split_of_index(parse_hf_index(hf_index_json(0, {}, weight_map), "i"), names);
    EXPECT_FALSE(found.split.has_value());
    return found.problem;
  };
  const std::string one = "model-00001-of-00002.safetensors", two = "model-00002-of-00002.safetensors";
  // The tensors first, whatever else is wrong: a tensor without a file, one the manifest lacks.
  EXPECT_THAT(problem({{"w", one}, {"v", two}, {"b", two}}), HasSubstr("tensor \"e\" no file"));
  EXPECT_THAT(problem({{"w", one}, {"v", "model-00003-of-00003.safetensors"}, {"b", two}}), HasSubstr("tensor \"e\" no file"));
  EXPECT_THAT(problem({{"w", one}, {"v", two}, {"b", two}, {"e", two}, {"x", one}}), HasSubstr("tensor \"x\", which the manifest"));
  EXPECT_THAT(problem({}), HasSubstr("tensor \"w\" no file"));
  // Then the files: names that are not shard names (one shard is model.safetensors, without an index),
  // two shard counts (the file of the other count is named), a shard given no tensor.
  EXPECT_THAT(problem({{"w", one}, {"v", one}, {"b", one}, {"e", one}}), HasSubstr("no tensor to model-00002-of-00002"));
  EXPECT_THAT(problem({{"w", "model.safetensors"}, {"v", "model.safetensors"}, {"b", "model.safetensors"}, {"e", "model.safetensors"}}),
              HasSubstr("the file \"model.safetensors\", which is not a shard file name"));
  EXPECT_THAT(problem({{"w", one}, {"v", "model-00001-of-00001.safetensors"}, {"b", one}, {"e", two}}),
              HasSubstr("\"model-00001-of-00001.safetensors\", which is not a shard file name"));
  EXPECT_THAT(problem({{"w", one}, {"v", "model-00003-of-00003.safetensors"}, {"b", two}, {"e", two}}),
              HasSubstr("file \"model-00003-of-00003.safetensors\" beside \"model-00001-of-00002.safetensors\": shards of 3 and of 2"));
  EXPECT_THAT(problem({{"w", one}, {"v", "other.safetensors"}, {"b", one}, {"e", one}}), HasSubstr("other.safetensors"));
  EXPECT_THAT(problem({{"w", one}, {"v", "model-1-of-00002.safetensors"}, {"b", two}, {"e", two}}), HasSubstr("model-1-of-00002"));
  // A shard count no split of 4 tensors can have (and that must not be allocated).
  EXPECT_THAT(problem({{"w", "model-00001-of-999999999999999999.safetensors"}, {"v", one}, {"b", two}, {"e", two}}),
              HasSubstr("a shard of 999999999999999999, but there are only 4 tensors"));
  EXPECT_THAT(problem({{"w", "model-00001-of-00005.safetensors"}, {"v", "model-00002-of-00005.safetensors"},
                       {"b", "model-00003-of-00005.safetensors"}, {"e", "model-00004-of-00005.safetensors"}}),
              HasSubstr("a shard of 5, but there are only 4 tensors"));
}

// Shard numbers are numbers: at 100,000 shards and more the names have six digits, and the split is
// still in shard order (the names sort differently as text: model-100000-... before model-10001-...).
TEST(HfIndexSplit, ShardsAreOrderedByNumberPastFiveDigits) {
  constexpr std::size_t kShards = 100001;
  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::string>> weight_map;
  for (std::size_t s = 0; s < kShards; ++s) {
    names.push_back("t" + std::to_string(s));
    weight_map.emplace_back(names.back(), hf_shard_file_name(s, kShards));
  }
  EXPECT_EQ(hf_shard_file_name(99999, kShards), "model-100000-of-100001.safetensors");
  const HfIndexSplit found = split_of_index(parse_hf_index(hf_index_json(0, {}, weight_map), "i"), names);
  ASSERT_TRUE(found.split.has_value()) << found.problem;
  ASSERT_EQ(found.split->size(), kShards);
  for (std::size_t s = 0; s < kShards; ++s) ASSERT_EQ((*found.split)[s], std::vector<std::size_t>{s}) << s;
  // The parser accepts exactly the names hf_shard_file_name writes.
  EXPECT_EQ(parse_hf_shard_file_name("model-00002-of-00005.safetensors"), (std::pair<std::size_t, std::size_t>{1, 5}));
  EXPECT_EQ(parse_hf_shard_file_name("model-100000-of-100001.safetensors"), (std::pair<std::size_t, std::size_t>{99999, 100001}));
  for (const char* bad : {"model.safetensors", "model-00001-of-00001.safetensors", "model-00000-of-00002.safetensors",
                          "model-00003-of-00002.safetensors", "model-002-of-00002.safetensors", "model-00001-of-00002.safetensor",
                          "model-0000a-of-00002.safetensors", "xmodel-00001-of-00002.safetensors", "model--of-.safetensors"}) {
    EXPECT_FALSE(parse_hf_shard_file_name(bad).has_value()) << bad;
  }
  EXPECT_TRUE(is_hf_weights_file_name("model.safetensors"));
  EXPECT_TRUE(is_hf_weights_file_name("model.safetensors.index.json"));
  EXPECT_TRUE(is_hf_weights_file_name("model-00001-of-00002.safetensors"));
  EXPECT_FALSE(is_hf_weights_file_name("model_ema.safetensors"));
}

}  // namespace
}  // namespace shardinit
