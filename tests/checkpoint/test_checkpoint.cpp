// A manifest's checkpoint: write_checkpoint's file holds exactly the generated values with the
// recorded metadata, is byte-reproducible, and verify_checkpoint finds any change to it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <span>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/files.hpp"
#include "shardinit/error.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/util/sha256.hpp"
#include "shardinit/version.hpp"

namespace shardinit {
namespace {

// WriteOptions that replace an existing output, the rest at their defaults.
WriteOptions overwriting(bool overwrite = true) {
  WriteOptions options;
  options.overwrite = overwrite;
  return options;
}

namespace fs = std::filesystem;
using test::read_all;
using test::write_all;
using TempDir = test::TempDir;
using ::testing::AnyOf;
using ::testing::HasSubstr;


// Every dtype, every distribution family, fan-based initializers, an explicit stream, a scalar and
// a zero-element tensor.
constexpr const char* kManifest = R"({"seed": 20240601, "tensors": [
  {"name": "fc.weight", "shape": [16, 12], "init": {"fn": "kaiming_uniform", "a": 2.23606797749979}},
  {"name": "fc.bias", "shape": [16], "init": {"fn": "xavier_uniform"}, "fan_in": 12},
  {"name": "emb", "shape": [10, 6], "dtype": "bf16", "init": {"fn": "normal", "std": 0.02}},
  {"name": "half", "shape": [7], "dtype": "f16", "init": {"fn": "uniform", "a": -1, "b": 1}},
  {"name": "dbl", "shape": [3, 3], "dtype": "f64", "init": {"fn": "trunc_normal", "std": 0.5}},
  {"name": "ln.weight", "shape": [12], "init": {"fn": "ones"}},
  {"name": "scale", "shape": [], "init": {"fn": "constant", "val": 0.125}, "stream": 12345},
  {"name": "nothing", "shape": [0, 4], "init": {"fn": "kaiming_normal"}}
]})";

// The same manifest: tensors in another order, keys in another order, other whitespace.
constexpr const char* kManifestReordered = R"({"tensors":[
{"init":{"fn":"constant","val":0.125},"stream":12345,"shape":[],"name":"scale"},
{"dtype":"f64","init":{"std":0.5,"fn":"trunc_normal"},"shape":[3,3],"name":"dbl"},
{"shape":[0,4],"name":"nothing","init":{"fn":"kaiming_normal"}},
{"fan_in":12,"init":{"fn":"xavier_uniform"},"name":"fc.bias","shape":[16]},
{"shape":[10,6],"name":"emb","init":{"std":0.02,"fn":"normal"},"dtype":"bf16"},
{"name":"ln.weight","init":{"fn":"ones"},"shape":[12]},
{"init":{"a":2.23606797749979,"fn":"kaiming_uniform"},"shape":[16,12],"name":"fc.weight"},
{"dtype":"f16","name":"half","shape":[7],"init":{"b":1,"a":-1,"fn":"uniform"}}],
"seed":20240601})";

Index total_elements(const Manifest& m) {
  Index n = 0;
  for (const auto& t : m.tensors) n += element_count(t.shape);
  return n;
}

TEST(Checkpoint, WriteThenVerifyMatches) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  const fs::path path = dir / "model.safetensors";
  const WriteStats stats = write_checkpoint(m, path);
  EXPECT_EQ(stats.tensors, 8);
  EXPECT_EQ(stats.elements, total_elements(m));
  EXPECT_EQ(stats.bytes, fs::file_size(path));
  EXPECT_EQ(stats.bytes, checkpoint_layout(m).file_size());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.safetensors"});

  const VerifyResult result = verify_checkpoint(m, path);
  EXPECT_TRUE(result.match) << result.message;
  EXPECT_EQ(result.elements_checked, total_elements(m));
  EXPECT_FALSE(result.tensor.has_value());
  EXPECT_FALSE(result.index.has_value());
}

TEST(Checkpoint, FileHoldsTheGeneratedValues) {
  // Independently of verify_checkpoint: every tensor's bytes equal a direct fill of its spec.
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  const fs::path path = dir / "model.safetensors";
  write_checkpoint(m, path);
  const std::string bytes = read_all(path);
  SafetensorsReader reader(path);
  ASSERT_EQ(reader.tensors().size(), m.tensors.size());
  for (const auto& t : m.tensors) {
    const SafetensorsTensor* st = reader.find(t.name);
    ASSERT_NE(st, nullptr) << t.name;
    EXPECT_EQ(st->dtype, t.dtype) << t.name;
    EXPECT_EQ(st->shape, t.shape) << t.name;
    const Index n = element_count(t.shape);
    std::vector<std::byte> want(static_cast<std::size_t>(n) * dtype_size(t.dtype));
    fill_flat(m.seed, t.spec(), 0, n, want);
    ASSERT_EQ(st->end - st->begin, want.size()) << t.name;
    if (!want.empty()) {
      EXPECT_EQ(0, std::memcmp(want.data(), bytes.data() + reader.data_start() + st->begin, want.size())) << t.name;
    }
  }
  // Spot values: ones, the constant, and the uniform bounds of fc.weight (1/sqrt(12)).
  const auto f32_at = [&](const std::string& name, Index i) {
    float v;
    std::memcpy(&v, bytes.data() + reader.data_start() + reader.find(name)->begin + 4 * i, 4);
    return v;
  };
  for (Index i = 0; i < 12; ++i) EXPECT_EQ(f32_at("ln.weight", i), 1.0f);
  EXPECT_EQ(f32_at("scale", 0), 0.125f);
  for (Index i = 0; i < 16 * 12; ++i) {
    EXPECT_LE(std::fabs(f32_at("fc.weight", i)), 1.0 / std::sqrt(12.0) + 1e-7);
  }
  EXPECT_EQ(reader.find("nothing")->begin, reader.find("nothing")->end);
}

TEST(Checkpoint, Metadata) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  const fs::path path = dir / "model.safetensors";
  write_checkpoint(m, path);
  SafetensorsReader reader(path);
  const SafetensorsMetadata& meta = reader.metadata();
  EXPECT_EQ(meta.size(), 5u);
  EXPECT_EQ(meta.at("format"), "pt");
  EXPECT_EQ(meta.at("shardinit.stream_format"), std::string(kStreamFormatVersion));
  EXPECT_EQ(meta.at("shardinit.stream_format"), "shardinit-stream-v1");
  EXPECT_EQ(meta.at("shardinit.seed"), "20240601");
  EXPECT_EQ(meta.at("shardinit.manifest_digest"), manifest_digest(m));
  EXPECT_EQ(meta.at("shardinit.manifest_digest"), "sha256:" + Sha256::hex(meta.at("shardinit.spec")));
  EXPECT_EQ(meta.at("shardinit.spec"), canonical_spec_json(m));
  // The spec is JSON that records the seed and every tensor.
  const auto spec = nlohmann::json::parse(meta.at("shardinit.spec"));
  EXPECT_EQ(spec["seed"], 20240601u);
  EXPECT_EQ(spec["tensors"].size(), 8u);
}

TEST(Checkpoint, LargestSeedIsRecordedInDecimal) {
  TempDir dir;
  const Manifest m = parse_manifest(R"({"seed": 18446744073709551615, "tensors": [{"name": "a", "shape": [3], "init": {"fn": "normal"}}]})");
  write_checkpoint(m, dir / "a.safetensors");
  EXPECT_EQ(SafetensorsReader(dir / "a.safetensors").metadata().at("shardinit.seed"), "18446744073709551615");
  EXPECT_TRUE(verify_checkpoint(m, dir / "a.safetensors").match);
}

TEST(Checkpoint, WritingTwiceGivesIdenticalBytes) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  write_checkpoint(m, dir / "a.safetensors");
  write_checkpoint(parse_manifest(kManifest), dir / "b.safetensors");
  const std::string a = read_all(dir / "a.safetensors");
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, read_all(dir / "b.safetensors"));
  // And overwriting in place gives the same bytes again.
  write_checkpoint(m, dir / "a.safetensors", overwriting());
  EXPECT_EQ(a, read_all(dir / "a.safetensors"));
}

TEST(Checkpoint, ManifestOrderDoesNotMatter) {
  TempDir dir;
  write_checkpoint(parse_manifest(kManifest), dir / "a.safetensors");
  write_checkpoint(parse_manifest(kManifestReordered), dir / "b.safetensors");
  EXPECT_EQ(read_all(dir / "a.safetensors"), read_all(dir / "b.safetensors"));
  // Each verifies against the other manifest.
  EXPECT_TRUE(verify_checkpoint(parse_manifest(kManifestReordered), dir / "a.safetensors").match);
  EXPECT_TRUE(verify_checkpoint(parse_manifest(kManifest), dir / "b.safetensors").match);
}

TEST(Checkpoint, RefusesToReplaceWithoutOverwrite) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  write_all(dir / "a.safetensors", "keep me");
  try {
    write_checkpoint(m, dir / "a.safetensors");
    ADD_FAILURE() << "replaced the file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_THAT(std::string(e.what()), HasSubstr("--force"));
  }
  EXPECT_EQ(read_all(dir / "a.safetensors"), "keep me");
}

// Which tensor and flat element a byte of the data region belongs to.
struct Location {
  std::string tensor;
  Index index;
};
Location locate(const SafetensorsReader& reader, std::uint64_t file_offset) {
  const std::uint64_t data_offset = file_offset - reader.data_start();
  for (const auto& t : reader.tensors()) {
    if (t.begin <= data_offset && data_offset < t.end) {
      return {t.name, static_cast<Index>((data_offset - t.begin) / dtype_size(t.dtype))};
    }
  }
  throw std::runtime_error("offset outside the data");
}

TEST(Checkpoint, VerifyFindsAFlippedDataByte) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  const fs::path good = dir / "good.safetensors";
  write_checkpoint(m, good);
  const std::string bytes = read_all(good);
  std::vector<std::uint64_t> positions;
  {
    SafetensorsReader reader(good);
    for (const auto& t : reader.tensors()) {
      if (t.begin == t.end) continue;
      const std::uint64_t start = reader.data_start() + t.begin, end = reader.data_start() + t.end;
      positions.push_back(start);                      // first byte of the tensor
      positions.push_back(start + (end - start) / 2);  // somewhere in the middle
      positions.push_back(start + (end - start) / 2 + 1);
      positions.push_back(end - 1);                    // last byte (high byte of the last element)
    }
    positions.push_back(bytes.size() - 1);  // the file's last byte
  }
  SafetensorsReader reader(good);
  for (const std::uint64_t at : positions) {
    for (const unsigned mask : {0x01u, 0x80u, 0xFFu}) {
      std::string corrupt = bytes;
      corrupt[at] = static_cast<char>(corrupt[at] ^ mask);
      const fs::path path = dir / "bad.safetensors";
      write_all(path, corrupt);
      const Location where = locate(reader, at);
      const VerifyResult r = verify_checkpoint(m, path);
      EXPECT_FALSE(r.match) << "byte " << at;
      ASSERT_TRUE(r.tensor.has_value()) << r.message;
      EXPECT_EQ(*r.tensor, where.tensor) << "byte " << at;
      ASSERT_TRUE(r.index.has_value()) << r.message;
      EXPECT_EQ(*r.index, where.index) << "byte " << at;
      EXPECT_THAT(r.message, HasSubstr(where.tensor));
      EXPECT_THAT(r.message, HasSubstr(std::to_string(where.index)));
    }
  }
}

TEST(Checkpoint, VerifyReportsTheFirstDifferenceInDataOrder) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  const fs::path good = dir / "good.safetensors";
  write_checkpoint(m, good);
  std::string bytes = read_all(good);
  SafetensorsReader reader(good);
  const SafetensorsTensor* w = reader.find("fc.weight");
  // Corrupt elements 100 and 37 of fc.weight: 37 is reported.
  bytes[reader.data_start() + w->begin + 4 * 100] ^= 0x10;
  bytes[reader.data_start() + w->begin + 4 * 37 + 2] ^= 0x10;
  write_all(dir / "bad.safetensors", bytes);
  const VerifyResult r = verify_checkpoint(m, dir / "bad.safetensors");
  EXPECT_FALSE(r.match);
  EXPECT_EQ(r.tensor.value_or(""), "fc.weight");
  EXPECT_EQ(r.index.value_or(-1), 37);
  EXPECT_THAT(r.message, HasSubstr("[3, 1]"));  // element 37 of a [16, 12] tensor
}

TEST(Checkpoint, VerifyFindsAFlippedHeaderByteWithoutThrowing) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  const fs::path good = dir / "good.safetensors";
  write_checkpoint(m, good);
  const std::string bytes = read_all(good);
  const std::uint64_t data_start = SafetensorsReader(good).data_start();
  const fs::path path = dir / "bad.safetensors";
  int failures = 0;
  for (std::uint64_t at = 0; at < data_start && failures < 5; ++at) {
    for (const unsigned mask : {0x01u, 0x20u}) {
      std::string corrupt = bytes;
      corrupt[at] = static_cast<char>(corrupt[at] ^ mask);
      write_all(path, corrupt);
      try {
        const VerifyResult r = verify_checkpoint(m, path);
        if (r.match) {
          ++failures;
          ADD_FAILURE() << "header byte " << at << " ^ " << mask << " not detected";
        }
        EXPECT_FALSE(r.message.empty());
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << "header byte " << at << " ^ " << mask << " threw: " << e.what();
      }
    }
  }
}

TEST(Checkpoint, VerifyReportsHeaderDifferencesByTensor) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  // A file of a manifest where one tensor has another shape.
  std::string other = kManifest;
  other.replace(other.find("[10, 6]"), 7, "[10, 7]");
  write_checkpoint(parse_manifest(other), dir / "other.safetensors");
  const VerifyResult r = verify_checkpoint(m, dir / "other.safetensors");
  EXPECT_FALSE(r.match);
  EXPECT_EQ(r.tensor.value_or(""), "emb");
  EXPECT_THAT(r.message, HasSubstr("emb"));
  // A file missing a tensor.
  std::string fewer = kManifest;
  const auto at = fewer.find(R"(  {"name": "ln.weight")");
  fewer.erase(at, fewer.find('\n', at) - at + 1);
  write_checkpoint(parse_manifest(fewer), dir / "fewer.safetensors");
  const VerifyResult f = verify_checkpoint(m, dir / "fewer.safetensors");
  EXPECT_FALSE(f.match);
  EXPECT_EQ(f.tensor.value_or(""), "ln.weight");
  EXPECT_THAT(f.message, HasSubstr("missing"));
}

TEST(Checkpoint, VerifyOfATruncatedFileIsAMismatch) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  const fs::path good = dir / "good.safetensors";
  write_checkpoint(m, good);
  const std::string bytes = read_all(good);
  const std::uint64_t data_start = SafetensorsReader(good).data_start();
  for (const std::size_t length : {std::size_t{0}, std::size_t{7}, std::size_t{8}, std::size_t{100},
                                   static_cast<std::size_t>(data_start), static_cast<std::size_t>(data_start + 5),
                                   bytes.size() - 1}) {
    write_all(dir / "bad.safetensors", bytes.substr(0, length));
    VerifyResult r;
    ASSERT_NO_THROW(r = verify_checkpoint(m, dir / "bad.safetensors")) << length;
    EXPECT_FALSE(r.match) << length;
    EXPECT_FALSE(r.message.empty()) << length;
  }
  // Appended bytes too.
  write_all(dir / "bad.safetensors", bytes + std::string(8, '\0'));
  EXPECT_FALSE(verify_checkpoint(m, dir / "bad.safetensors").match);
}

TEST(Checkpoint, VerifyAgainstAnotherSeedIsAMismatch) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  std::string other = kManifest;
  other.replace(other.find("20240601"), 8, "20240602");
  write_checkpoint(parse_manifest(other), dir / "other.safetensors");
  const VerifyResult r = verify_checkpoint(m, dir / "other.safetensors");
  EXPECT_FALSE(r.match);
  EXPECT_THAT(r.message, AnyOf(HasSubstr("metadata"), HasSubstr("differs")));
  EXPECT_THAT(r.message, HasSubstr("metadata"));
}

TEST(Checkpoint, VerifyAgainstAnotherParameterIsAMismatch) {
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  std::string other = kManifest;
  other.replace(other.find("0.02"), 4, "0.03");
  write_checkpoint(parse_manifest(other), dir / "other.safetensors");
  const VerifyResult r = verify_checkpoint(m, dir / "other.safetensors");
  EXPECT_FALSE(r.match);
  EXPECT_THAT(r.message, HasSubstr("metadata"));
}

TEST(Checkpoint, VerifyWithForgedMetadataStillChecksTheData) {
  // Metadata says the right manifest, but the data came from another seed: the data check catches it.
  TempDir dir;
  const Manifest m = parse_manifest(kManifest);
  std::string other = kManifest;
  other.replace(other.find("20240601"), 8, "20240602");
  const Manifest o = parse_manifest(other);
  const SafetensorsLayout layout = checkpoint_layout(m);  // m's header and metadata
  std::map<std::string, TensorFiller> fillers;
  for (const auto& t : o.tensors) fillers.emplace(t.name, TensorFiller(o.seed, t.spec()));
  write_safetensors(
      dir / "forged.safetensors", layout,
      [&](const SafetensorsTensor& t, Index first, Index count, std::span<std::byte> out) {
        fillers.at(t.name).fill_flat(first, count, out);
      },
      IfExists::refuse);
  const VerifyResult r = verify_checkpoint(m, dir / "forged.safetensors");
  EXPECT_FALSE(r.match);
  EXPECT_TRUE(r.tensor.has_value());
  EXPECT_TRUE(r.index.has_value());
}

TEST(Checkpoint, VerifyOfAMissingFileIsAnIoError) {
  TempDir dir;
  try {
    (void)verify_checkpoint(parse_manifest(kManifest), dir / "missing.safetensors");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
  }
}

TEST(Checkpoint, VerifyOfANonSafetensorsFileIsAMismatch) {
  TempDir dir;
  write_all(dir / "junk.safetensors", "this is not a safetensors file at all");
  VerifyResult r;
  ASSERT_NO_THROW(r = verify_checkpoint(parse_manifest(kManifest), dir / "junk.safetensors"));
  EXPECT_FALSE(r.match);
  EXPECT_THAT(r.message, HasSubstr("junk.safetensors"));
}

}  // namespace
}  // namespace shardinit
