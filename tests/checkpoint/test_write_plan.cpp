// The write plan: the shared files' bytes split over the ranks tile every file exactly, once, in
// balanced aligned ranges; whatever range a rank produces is the same bytes as the one-process file;
// the HF plan follows huggingface_hub's split and keeps the spec once (in the index); per-rank
// files keep it once (rank 0's).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "checkpoint/file_bytes.hpp"
#include "checkpoint/pipeline.hpp"
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/checkpoint/write_plan.hpp"
#include "shardinit/format/hf_sharding.hpp"
#include "shardinit/error.hpp"
#include "shardinit/manifest/manifest.hpp"

namespace shardinit {
namespace {

using ::testing::HasSubstr;

// Every dtype size, a scalar, an empty tensor, sizes that are not multiples of anything.
Manifest small_manifest() {
  return parse_manifest(R"({"seed": 5, "parallel": {"tensor": {"mode": "1d", "size": 2}}, "tensors": [
    {"name": "w", "shape": [300, 70], "init": {"fn": "normal", "std": 0.02}, "layout": "linear_col"},
    {"name": "v", "shape": [1001], "dtype": "bf16", "init": {"fn": "uniform"}},
    {"name": "d", "shape": [17, 3], "dtype": "f64", "init": {"fn": "trunc_normal"}},
    {"name": "h", "shape": [2049], "dtype": "f16", "init": {"fn": "ones"}},
    {"name": "s", "shape": [], "init": {"fn": "constant", "val": 3}},
    {"name": "e", "shape": [0, 5], "init": {"fn": "zeros"}},
    {"name": "r", "shape": [64, 34], "init": {"fn": "kaiming_uniform", "a": 2.23606797749979}, "layout": "linear_row"}
  ]})", "test");
}

// The bytes of every planned file, produced whole by one process.
std::vector<std::vector<std::byte>> whole_files(const WritePlan& plan, const detail::ManifestFillers& fillers) {
  std::vector<std::vector<std::byte>> files;
  for (const PlannedFile& f : plan.files) {
    files.emplace_back(f.layout.file_size());
    detail::FileBytes(f, fillers).produce(0, files.back());
  }
  return files;
}

TEST(WritePlan, SharedFilesAreTiledOnceByBalancedAlignedRangesAtEveryWorldSize) {
  const Manifest m = small_manifest();
  for (const OutputRequest& request : {OutputRequest{}, output_request(OutputFormat::hf, 9000)}) {
    const WritePlan one = plan_output(m, request, 1, 0);
    for (int world : {1, 2, 3, 4, 5, 8, 13, 64}) {
      if (world % 2 != 0 && world != 1) continue;  // the manifest's tp 2 needs an even world
      std::vector<std::vector<std::pair<std::uint64_t, std::uint64_t>>> covered(one.files.size());
      Index elements = 0;
      std::uint64_t total = 0;
      for (const PlannedFile& f : one.files) total += f.layout.file_size();
      const std::uint64_t alignment = range_alignment(total, world);
      EXPECT_EQ(alignment, 4096u);  // a small job
      std::uint64_t largest = 0;
      for (int rank = 0; rank < world; ++rank) {
        const WritePlan plan = plan_output(m, request, world, rank);
        ASSERT_EQ(plan.files.size(), one.files.size());
        for (const FileRange& r : plan.ranges) {
          covered[r.file].emplace_back(r.begin, r.end);
          EXPECT_TRUE(r.begin % alignment == 0 || r.begin == 0) << r.begin;
          EXPECT_TRUE(r.end % alignment == 0 || r.end == plan.files[r.file].layout.file_size());
        }
        elements += plan.elements_of_this_rank();
        largest = std::max(largest, plan.bytes_of_this_rank());
      }
      // Balanced: no rank more than its share plus one unit per file start rounding.
      EXPECT_LE(largest, total / static_cast<std::uint64_t>(world) + alignment * (one.files.size() + 1)) << world;
      Index expected = 0;
      for (const ManifestTensor& t : m.tensors) expected += element_count(t.shape);
      EXPECT_EQ(elements, expected);
      for (std::size_t f = 0; f < covered.size(); ++f) {
        auto& ranges = covered[f];
        std::sort(ranges.begin(), ranges.end());
        std::uint64_t at = 0;
        for (const auto& [b, e] : ranges) {
          EXPECT_EQ(b, at) << "file " << f << " world " << world;
          at = e;
        }
        EXPECT_EQ(at, one.files[f].layout.file_size());
      }
    }
  }
}

TEST(WritePlan, LargeJobsAlignToOneMebibyte) {
  EXPECT_EQ(range_alignment(std::uint64_t{64} << 20, 1), std::uint64_t{1} << 20);
  EXPECT_EQ(range_alignment((std::uint64_t{64} << 20) - 1, 1), 4096u);
  EXPECT_EQ(range_alignment(std::uint64_t{64} << 23, 8), std::uint64_t{1} << 20);
  EXPECT_EQ(range_alignment(std::uint64_t{64} << 23, 9), 4096u);
}

TEST(FileBytes, AnyPieceOfAnyRankIsTheSameBytesAsTheWholeFile) {
  const Manifest m = small_manifest();
  const detail::ManifestFillers fillers(m);
  for (const OutputRequest& request : {OutputRequest{}, output_request(OutputFormat::hf, 9000)}) {
    const WritePlan one = plan_output(m, request, 1, 0);
    const auto whole = whole_files(one, fillers);
    for (int world : {2, 4, 8}) {
      for (int rank = 0; rank < world; ++rank) {
        const WritePlan plan = plan_output(m, request, world, rank);
        // Small pieces (a multiple of 8 bytes), so that pieces cut through tensors everywhere.
        for (const detail::Piece& p : detail::pieces_of(plan.ranges, 1000)) {
          std::vector<std::byte> bytes(p.size());
          detail::FileBytes(plan.files[p.file], fillers).produce(p.begin, bytes);
          ASSERT_TRUE(std::equal(bytes.begin(), bytes.end(), whole[p.file].begin() + static_cast<std::ptrdiff_t>(p.begin)))
              << "file " << p.file << " bytes [" << p.begin << ", " << p.end << ") of rank " << rank << " of " << world;
        }
      }
    }
  }
}

TEST(FileBytes, ThePlainFileIsTheCheckpointLayoutWithItsValues) {
  const Manifest m = small_manifest();
  const WritePlan plan = plan_output(m, OutputRequest{}, 1, 0);
  ASSERT_EQ(plan.files.size(), 1u);
  EXPECT_EQ(plan.files[0].layout.prefix(), checkpoint_layout(m).prefix());
  const detail::ManifestFillers fillers(m);
  const auto bytes = whole_files(plan, fillers)[0];
  const SafetensorsLayout layout = checkpoint_layout(m);
  for (const SafetensorsTensor& t : layout.tensors()) {
    const ManifestTensor& mt = *std::find_if(m.tensors.begin(), m.tensors.end(), [&](const ManifestTensor& x) { return x.name == t.name; });
    std::vector<std::byte> want(t.end - t.begin);
    TensorFiller(m.seed, mt.spec()).fill_flat(0, element_count(mt.shape), want);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), bytes.begin() + static_cast<std::ptrdiff_t>(layout.data_start() + t.begin))) << t.name;
  }
}

TEST(WritePlan, HfShardsFollowHuggingFaceHubAndKeepTheSpecInTheIndex) {
  const Manifest m = small_manifest();
  // Sizes in manifest order: w 84000, v 2002, d 408, h 4098, s 4, e 0, r 8704 bytes; limit 9000:
  // w > 9000 -> its own shard at once; v, d, h (6508) + s, e; r would pass 9000 -> closes it.
  const WritePlan plan = plan_output(m, output_request(OutputFormat::hf, 9000), 1, 0);
  ASSERT_EQ(plan.files.size(), 3u);
  EXPECT_EQ(plan.files[0].name, "model-00001-of-00003.safetensors");
  EXPECT_EQ(plan.files[2].name, "model-00003-of-00003.safetensors");
  const auto names = [](const PlannedFile& f) {
    std::vector<std::string> n;
    for (const auto& t : f.layout.tensors()) n.push_back(t.name);
    std::sort(n.begin(), n.end());
    return n;
  };
  EXPECT_EQ(names(plan.files[0]), (std::vector<std::string>{"w"}));
  EXPECT_EQ(names(plan.files[1]), (std::vector<std::string>{"d", "e", "h", "s", "v"}));
  EXPECT_EQ(names(plan.files[2]), (std::vector<std::string>{"r"}));
  ASSERT_TRUE(plan.index.has_value());
  const HfIndex index = parse_hf_index(*plan.index, "index");
  EXPECT_EQ(index.total_size, 84000u + 2002 + 408 + 4098 + 4 + 0 + 8704);
  std::vector<std::pair<std::string, std::string>> expected_map{
      {"w", plan.files[0].name}, {"v", plan.files[1].name}, {"d", plan.files[1].name}, {"h", plan.files[1].name},
      {"s", plan.files[1].name}, {"e", plan.files[1].name}, {"r", plan.files[2].name}};
  std::sort(expected_map.begin(), expected_map.end());
  EXPECT_EQ(index.weight_map, expected_map);
  // In the file, the weight map is in shard order and manifest order within each shard.
  EXPECT_LT(plan.index->find("\"w\": "), plan.index->find("\"v\": "));
  EXPECT_LT(plan.index->find("\"e\": "), plan.index->find("\"r\": "));
  bool spec_in_index = false;
  for (const auto& [key, value] : index.metadata) spec_in_index |= key == kMetaSpec && value == canonical_spec_json(m);
  EXPECT_TRUE(spec_in_index);
  for (const PlannedFile& f : plan.files) {
    EXPECT_EQ(f.metadata.at(kMetaFormat), "pt");
    EXPECT_FALSE(f.metadata.contains(kMetaSpec)) << f.name;
    EXPECT_EQ(f.metadata.at(kMetaDigest), manifest_digest(m));
  }
  // Everything in one shard: model.safetensors, no index, the whole metadata in the file.
  const WritePlan single = plan_output(m, output_request(OutputFormat::hf, 200000), 1, 0);
  ASSERT_EQ(single.files.size(), 1u);
  EXPECT_EQ(single.files[0].name, "model.safetensors");
  EXPECT_FALSE(single.index.has_value());
  EXPECT_EQ(single.files[0].layout.prefix(), checkpoint_layout(m).prefix());
}

// A given split (verify: the one a directory's index records) is planned as it is: its shards, the
// index of that split, the hint about --max-shard-size dropped; a split that is not one of the
// manifest's tensors is refused, naming what is wrong.
TEST(WritePlan, AGivenSplitIsPlannedAsGivenAndMustPlaceEveryTensorOnce) {
  const Manifest m = small_manifest();  // w v d h s e r
  const WritePlan by_size = plan_output(m, output_request(OutputFormat::hf, 9000), 1, 0);
  OutputRequest request = output_request(OutputFormat::hf);
  request.split = HfSplit{{0}, {1, 2, 3, 4, 5}, {6}};  // the split at 9000, given
  const WritePlan given = plan_output(m, request, 1, 0);
  EXPECT_TRUE(given.split_given);
  EXPECT_FALSE(by_size.split_given);
  ASSERT_EQ(given.files.size(), by_size.files.size());
  for (std::size_t i = 0; i < given.files.size(); ++i) {
    EXPECT_EQ(given.files[i].name, by_size.files[i].name);
    EXPECT_EQ(given.files[i].layout.prefix(), by_size.files[i].layout.prefix());
  }
  EXPECT_EQ(given.index, by_size.index);
  request.split = HfSplit{{0, 1, 2, 3, 4, 5, 6}};  // one shard: model.safetensors, no index
  const WritePlan single = plan_output(m, request, 1, 0);
  ASSERT_EQ(single.files.size(), 1u);
  EXPECT_EQ(single.files[0].name, "model.safetensors");
  EXPECT_FALSE(single.index.has_value());
  const auto refused = [&](HfSplit split, const std::string& expected) {
    OutputRequest bad = output_request(OutputFormat::hf);
    bad.split = std::move(split);
    try {
      (void)plan_output(m, bad, 1, 0);
      ADD_FAILURE() << "accepted a split that should be refused: " << expected;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
      EXPECT_THAT(e.what(), HasSubstr(expected));
    }
  };
  refused({{0, 1, 2}, {3, 4, 5}}, "places 6 of the 7 tensors");
  refused({{0, 1, 2}, {2, 3, 4, 5, 6}}, "position 2 twice");
  refused({{0, 1, 2, 3, 4, 5, 6, 7}}, "position 7 of 7 tensors");
  refused({{0, 1, 2, 3, 4, 5, 6}, {}}, "shard 2 of the split holds no tensor");
  OutputRequest unread = output_request(OutputFormat::hf);
  unread.split_as_found = true;  // the split not read yet: a caller's mistake, not a silent default
  EXPECT_THROW((void)plan_output(m, unread, 1, 0), Error);
}

TEST(WritePlan, PerRankFilesRecordTheSpecOnceAndStayFarBelowTheHeaderLimitFor100kTensors) {
  const Manifest m = small_manifest();
  EXPECT_TRUE(plan_output(m, output_request(OutputFormat::per_rank), 2, 0).files[0].metadata.contains(kMetaSpec));
  EXPECT_FALSE(plan_output(m, output_request(OutputFormat::per_rank), 2, 1).files[0].metadata.contains(kMetaSpec));
  // A 100,000-tensor MoE-like manifest: the headers of rank 1's file and of every HF shard.
  std::string text = R"({"seed": 1, "parallel": {"data": 2, "tensor": {"mode": "1d", "size": 2}}, "tensors": [)";
  for (int i = 0; i < 100000; ++i) {
    text += std::string(i ? "," : "") + R"({"name": "model.layers.)" + std::to_string(i / 1000) + ".mlp.experts." +
            std::to_string(i % 1000) + R"(.w1.weight", "shape": [64, 32], "dtype": "bf16", "init": {"fn": "normal", "std": 0.02}, "layout": "linear_col"})";
  }
  const Manifest big = parse_manifest(text + "]}", "big");
  const WritePlan rank1 = plan_output(big, output_request(OutputFormat::per_rank), 4, 1);
  EXPECT_LT(rank1.files[0].layout.data_start(), std::uint64_t{30} << 20) << "per-rank header bytes";
  const WritePlan hf = plan_output(big, output_request(OutputFormat::hf, 40'000'000), 1, 0);
  for (const PlannedFile& f : hf.files) EXPECT_LT(f.layout.data_start(), std::uint64_t{20} << 20) << f.name;
}

}  // namespace
}  // namespace shardinit
