// safetensors layout, writer and reader: format details checked with an independent parser, the
// reader's rejection of every kind of malformed file, and the writer's atomicity.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <span>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/files.hpp"
#include "shardinit/error.hpp"
#include "shardinit/format/safetensors.hpp"

namespace shardinit {
namespace {

namespace fs = std::filesystem;
using test::read_all;
using test::write_all;
using TempDir = test::TempDir;
using ::testing::HasSubstr;
using nlohmann::json;


std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return s;
}

std::uint64_t read_le64(const std::string& bytes, std::size_t at = 0) {
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= std::uint64_t(static_cast<unsigned char>(bytes.at(at + i))) << (8 * i);
  return n;
}

// A safetensors file from a header text and data bytes (no padding added).
std::string craft(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

// A deterministic value for each element, recognisable by an independent reader:
//   F64: i * 0.25 + k, F32: i + 0.5 + k, BF16: 0x3F80 + i + k, F16: 0x3C00 + i + k  (k = name length)
void produce_pattern(const SafetensorsTensor& t, Index first, Index count, std::span<std::byte> out) {
  const std::size_t size = dtype_size(t.dtype);
  ASSERT_EQ(out.size(), static_cast<std::size_t>(count) * size);
  const auto k = static_cast<std::int64_t>(t.name.size());
  for (Index j = 0; j < count; ++j) {
    const Index i = first + j;
    std::byte* at = out.data() + static_cast<std::size_t>(j) * size;
    switch (t.dtype) {
      case DType::f64: {
        const double v = static_cast<double>(i) * 0.25 + static_cast<double>(k);
        std::memcpy(at, &v, 8);
        break;
      }
      case DType::f32: {
        const float v = static_cast<float>(i) + 0.5f + static_cast<float>(k);
        std::memcpy(at, &v, 4);
        break;
      }
      case DType::bf16:
      case DType::f16: {
        const std::uint16_t v = static_cast<std::uint16_t>((t.dtype == DType::bf16 ? 0x3F80 : 0x3C00) + i + k);
        at[0] = std::byte(v & 0xFF);
        at[1] = std::byte(v >> 8);
        break;
      }
    }
  }
}

std::vector<SafetensorsLayout::Entry> small_entries() {
  return {{"weight", DType::f32, {2, 3}},  {"half", DType::f16, {3}},       {"dbl", DType::f64, {2}},
          {"brain", DType::bf16, {2, 2}},  {"empty", DType::f32, {0, 5}},   {"scalar", DType::f32, {}}};
}

SafetensorsMetadata small_metadata() { return {{"format", "pt"}, {"note", "h\u00e9llo \"quoted\""}}; }

// Writes the small file and returns its path.
fs::path write_small(const TempDir& dir, const std::string& name = "small.safetensors") {
  const SafetensorsLayout layout(small_entries(), small_metadata());
  const fs::path path = dir / name;
  write_safetensors(path, layout, produce_pattern);
  return path;
}

// Requires SafetensorsReader(path) to throw Error(bad_file) whose message contains `part`.
void expect_bad_file(const fs::path& path, const std::string& part, const std::string& what) {
  try {
    SafetensorsReader reader(path);
    ADD_FAILURE() << what << ": accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_file) << what << ": " << e.what();
    EXPECT_THAT(std::string(e.what()), HasSubstr(part)) << what;
    EXPECT_THAT(std::string(e.what()), HasSubstr(path.string())) << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw a non-shardinit exception: " << e.what();
  }
}

void expect_bad_bytes(const TempDir& dir, const std::string& bytes, const std::string& part, const std::string& what) {
  const fs::path path = dir / "bad.safetensors";
  write_all(path, bytes);
  expect_bad_file(path, part, what);
}

// ---------------------------------------------------------------------------------------------
// Layout

TEST(SafetensorsLayout, HeaderLengthAlignmentOrderAndOffsets) {
  const std::vector<SafetensorsLayout::Entry> entries = {
      {"z16", DType::f16, {3}},  {"a16", DType::bf16, {5}}, {"m32", DType::f32, {2, 2}},
      {"b64", DType::f64, {3}},  {"a32", DType::f32, {7}},  {"c16", DType::f16, {1}}};
  const SafetensorsLayout layout(entries, {{"format", "pt"}});
  const std::string& prefix = layout.prefix();
  ASSERT_GE(prefix.size(), 8u);
  // Little-endian length of the JSON header, which fills the rest of the prefix.
  EXPECT_EQ(read_le64(prefix), prefix.size() - 8);
  EXPECT_EQ(layout.data_start(), prefix.size());
  EXPECT_EQ(layout.data_start() % 8, 0u);
  // Element size descending, then name.
  std::vector<std::string> order;
  for (const auto& t : layout.tensors()) order.push_back(t.name);
  EXPECT_EQ(order, (std::vector<std::string>{"b64", "a32", "m32", "a16", "c16", "z16"}));
  // Contiguous offsets from 0.
  std::uint64_t offset = 0;
  for (const auto& t : layout.tensors()) {
    EXPECT_EQ(t.begin, offset) << t.name;
    EXPECT_EQ(t.end - t.begin, static_cast<std::uint64_t>(element_count(t.shape)) * dtype_size(t.dtype)) << t.name;
    EXPECT_EQ(t.begin % dtype_size(t.dtype), 0u) << t.name << " is not aligned";
    offset = t.end;
  }
  EXPECT_EQ(offset, 24u + 28u + 16u + 10u + 2u + 6u);
  EXPECT_EQ(layout.file_size(), layout.data_start() + offset);
  // Header padding is spaces only.
  const std::string header = prefix.substr(8);
  const auto last = header.find_last_not_of(' ');
  ASSERT_NE(last, std::string::npos);
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(header.size() - last - 1, 8u);
}

TEST(SafetensorsLayout, EveryPaddingResidueIsAligned) {
  // Names of lengths 1..24 move the header length through every residue mod 8.
  std::set<std::uint64_t> residues;
  for (int n = 1; n <= 24; ++n) {
    const SafetensorsLayout layout({{std::string(static_cast<std::size_t>(n), 'x'), DType::f32, {1}}}, {});
    EXPECT_EQ(layout.data_start() % 8, 0u) << n;
    EXPECT_EQ(read_le64(layout.prefix()), layout.data_start() - 8) << n;
    const std::string header = layout.prefix().substr(8);
    residues.insert(header.find_last_not_of(' ') + 1);
    EXPECT_TRUE(json::accept(header)) << n;
  }
  std::set<std::uint64_t> mod8;
  for (const auto r : residues) mod8.insert(r % 8);
  EXPECT_EQ(mod8.size(), 8u);  // the test really exercised every amount of padding
}

TEST(SafetensorsLayout, IndependentOfEntryOrder) {
  auto entries = small_entries();
  const SafetensorsLayout a(entries, small_metadata());
  std::reverse(entries.begin(), entries.end());
  const SafetensorsLayout b(entries, small_metadata());
  std::rotate(entries.begin(), entries.begin() + 2, entries.end());
  const SafetensorsLayout c(entries, small_metadata());
  EXPECT_EQ(a.prefix(), b.prefix());
  EXPECT_EQ(a.prefix(), c.prefix());
}

TEST(SafetensorsLayout, NoMetadataMeansNoMetadataKey) {
  const SafetensorsLayout layout({{"a", DType::f32, {2}}}, {});
  const json header = json::parse(layout.prefix().substr(8));
  EXPECT_FALSE(header.contains("__metadata__"));
  EXPECT_TRUE(header.contains("a"));
}

TEST(SafetensorsLayout, RejectsATensorNamedMetadata) {
  try {
    const SafetensorsLayout layout({{"__metadata__", DType::f32, {2}}}, {});
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
  }
}

// ---------------------------------------------------------------------------------------------
// Write, read back, and an independent parser

TEST(Safetensors, RoundTrip) {
  TempDir dir;
  const SafetensorsLayout layout(small_entries(), small_metadata());
  const fs::path path = write_small(dir);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"small.safetensors"});  // no temporary left behind
  EXPECT_EQ(fs::file_size(path), layout.file_size());

  SafetensorsReader reader(path);
  EXPECT_EQ(reader.prefix(), layout.prefix());
  EXPECT_EQ(reader.data_start(), layout.data_start());
  EXPECT_EQ(reader.file_size(), layout.file_size());
  EXPECT_EQ(reader.metadata(), small_metadata());
  ASSERT_EQ(reader.tensors().size(), layout.tensors().size());
  for (const auto& want : layout.tensors()) {
    const SafetensorsTensor* got = reader.find(want.name);
    ASSERT_NE(got, nullptr) << want.name;
    EXPECT_EQ(got->dtype, want.dtype) << want.name;
    EXPECT_EQ(got->shape, want.shape) << want.name;
    EXPECT_EQ(got->begin, want.begin) << want.name;
    EXPECT_EQ(got->end, want.end) << want.name;
    // The data is what the producer made.
    std::vector<std::byte> expected(want.end - want.begin), actual(want.end - want.begin);
    produce_pattern(want, 0, element_count(want.shape), expected);
    reader.read(reader.data_start() + got->begin, actual);
    EXPECT_EQ(expected, actual) << want.name;
  }
  EXPECT_EQ(reader.find("nope"), nullptr);
  // Reading past the end is a bad file, not garbage.
  std::vector<std::byte> past(16);
  EXPECT_THROW(reader.read(reader.file_size() - 8, past), Error);
}

TEST(Safetensors, ReadableByAnIndependentParser) {
  TempDir dir;
  const std::string bytes = read_all(write_small(dir));
  ASSERT_GE(bytes.size(), 8u);
  const std::uint64_t n = read_le64(bytes);
  ASSERT_LE(8 + n, bytes.size());
  const json header = json::parse(bytes.substr(8, n));
  ASSERT_TRUE(header.is_object());
  const std::uint64_t data_start = 8 + n;
  EXPECT_EQ(data_start % 8, 0u);
  ASSERT_TRUE(header.contains("__metadata__"));
  EXPECT_EQ(header["__metadata__"], json({{"format", "pt"}, {"note", "h\u00e9llo \"quoted\""}}));

  const std::map<std::string, std::pair<std::string, std::vector<std::int64_t>>> want = {
      {"weight", {"F32", {2, 3}}}, {"half", {"F16", {3}}},    {"dbl", {"F64", {2}}},
      {"brain", {"BF16", {2, 2}}}, {"empty", {"F32", {0, 5}}}, {"scalar", {"F32", {}}}};
  EXPECT_EQ(header.size(), want.size() + 1);
  std::uint64_t covered = 0;
  for (const auto& [name, expected] : want) {
    ASSERT_TRUE(header.contains(name)) << name;
    const json& entry = header[name];
    EXPECT_EQ(entry.size(), 3u) << name;
    EXPECT_EQ(entry["dtype"], expected.first) << name;
    EXPECT_EQ(entry["shape"].get<std::vector<std::int64_t>>(), expected.second) << name;
    const auto begin = entry["data_offsets"][0].get<std::uint64_t>();
    const auto end = entry["data_offsets"][1].get<std::uint64_t>();
    std::int64_t count = 1;
    for (const auto d : expected.second) count *= d;
    const std::string& dt = expected.first;
    const std::size_t size = dt == "F64" ? 8 : dt == "F32" ? 4 : 2;
    ASSERT_EQ(end - begin, static_cast<std::uint64_t>(count) * size) << name;
    covered += end - begin;
    const auto k = static_cast<std::int64_t>(name.size());
    for (std::int64_t i = 0; i < count; ++i) {
      const std::size_t at = data_start + begin + static_cast<std::size_t>(i) * size;
      ASSERT_LE(at + size, bytes.size());
      if (dt == "F64") {
        double v;
        std::memcpy(&v, bytes.data() + at, 8);  // little-endian host
        EXPECT_EQ(v, static_cast<double>(i) * 0.25 + static_cast<double>(k)) << name << "[" << i << "]";
      } else if (dt == "F32") {
        float v;
        std::memcpy(&v, bytes.data() + at, 4);
        EXPECT_EQ(v, static_cast<float>(i) + 0.5f + static_cast<float>(k)) << name << "[" << i << "]";
      } else {
        const unsigned v = static_cast<unsigned char>(bytes[at]) | (static_cast<unsigned char>(bytes[at + 1]) << 8);
        EXPECT_EQ(v, (dt == "BF16" ? 0x3F80u : 0x3C00u) + static_cast<unsigned>(i + k)) << name << "[" << i << "]";
      }
    }
  }
  EXPECT_EQ(data_start + covered, bytes.size());  // nothing after the data
}

TEST(Safetensors, ProducerIsAskedForEveryElementOnceInChunks) {
  TempDir dir;
  // 5M f32 elements = 20 MB: more than one of the writer's chunks.
  const SafetensorsLayout layout({{"big", DType::f32, {5, 1000, 1000}}, {"small", DType::f16, {3}}}, {});
  std::map<std::string, Index> next;
  int calls = 0;
  write_safetensors(
      dir / "big.safetensors", layout,
      [&](const SafetensorsTensor& t, Index first, Index count, std::span<std::byte> out) {
        ++calls;
        EXPECT_EQ(first, next[t.name]) << t.name;  // in order, no gap, no overlap
        next[t.name] = first + count;
        EXPECT_EQ(out.size(), static_cast<std::size_t>(count) * dtype_size(t.dtype));
        std::memset(out.data(), 0x11, out.size());
      },
      IfExists::refuse);
  EXPECT_EQ(next["big"], 5'000'000);
  EXPECT_EQ(next["small"], 3);
  EXPECT_GE(calls, 3);
  EXPECT_EQ(fs::file_size(dir / "big.safetensors"), layout.file_size());
  SafetensorsReader reader(dir / "big.safetensors");
  EXPECT_EQ(reader.tensors().size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// The reader rejects malformed files with Error(bad_file)

TEST(SafetensorsReader, RejectsEveryTruncation) {
  TempDir dir;
  const std::string bytes = read_all(write_small(dir));
  ASSERT_GT(bytes.size(), 100u);
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    expect_bad_bytes(dir, bytes.substr(0, length), "", "prefix of " + std::to_string(length) + " bytes");
  }
  // And the whole file is fine.
  write_all(dir / "whole.safetensors", bytes);
  EXPECT_NO_THROW(SafetensorsReader(dir / "whole.safetensors"));
}

TEST(SafetensorsReader, RejectsBadHeaderLengths) {
  TempDir dir;
  expect_bad_bytes(dir, le64(1000) + "{}      ", "header length 1000", "header length past the end");
  // 2^40 claimed in an 8-byte (and a 16-byte) file: rejected by the limit without allocating it.
  expect_bad_bytes(dir, le64(std::uint64_t{1} << 40), "header length", "2^40 header, 8 bytes");
  expect_bad_bytes(dir, le64(std::uint64_t{1} << 40) + "{}      ", "limit", "2^40 header, 16 bytes");
  expect_bad_bytes(dir, le64(UINT64_MAX) + "{}      ", "header length", "2^64-1 header");
  // A sparse file big enough to hold the claimed header: it is the limit that rejects it.
  {
    const fs::path path = dir / "sparse.safetensors";
    write_all(path, le64(kMaxSafetensorsHeader + 8));
    fs::resize_file(path, kMaxSafetensorsHeader + 64);
    expect_bad_file(path, "limit", "header over the 100 MB limit");
  }
  expect_bad_bytes(dir, "", "", "empty file");
  expect_bad_bytes(dir, "abc", "", "3-byte file");
}

TEST(SafetensorsReader, RejectsHeadersThatAreNotAJsonObject) {
  TempDir dir;
  expect_bad_bytes(dir, craft("not json", ""), "does not start with '{'", "non-JSON header");
  expect_bad_bytes(dir, craft("{\"a\": ", ""), "JSON", "unterminated JSON");
  // The reference reader refuses a header that does not open with '{' (InvalidHeaderStart).
  expect_bad_bytes(dir, craft("[1, 2]  ", ""), "does not start with '{'", "JSON array header");
  expect_bad_bytes(dir, craft("\"str\"   ", ""), "does not start with '{'", "JSON string header");
  expect_bad_bytes(dir, craft(" {}     ", ""), "does not start with '{'", "leading space");
  expect_bad_bytes(dir, craft("{} {}   ", ""), "JSON", "two JSON values");
  expect_bad_bytes(dir, craft(std::string("{\"\xff\":1}"), ""), "JSON", "invalid UTF-8");
  // An empty object is a valid file with no tensors.
  write_all(dir / "empty.safetensors", craft("{}      ", ""));
  SafetensorsReader reader(dir / "empty.safetensors");
  EXPECT_TRUE(reader.tensors().empty());
}

TEST(SafetensorsReader, RejectsNulPaddingAndWhatFollowsIt) {
  // Padding is spaces (0x20) only: nothing may follow the JSON, not even after a NUL byte.
  TempDir dir;
  expect_bad_bytes(dir, craft(std::string("{}\0\0\0\0\0\0", 8), ""), "JSON", "NUL padding");
  expect_bad_bytes(dir, craft(std::string("{}\0garbage[", 11), ""), "JSON", "garbage after a NUL byte");
}

std::string entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"dtype": ")" + dtype + R"(", "shape": )" + shape + R"(, "data_offsets": )" + offsets + "}";
}

TEST(SafetensorsReader, RejectsBadTensorEntries) {
  TempDir dir;
  const std::string data8(8, '\0');
  // A valid baseline, so that each variant below fails for its own reason.
  write_all(dir / "ok.safetensors", craft(R"({"t": )" + entry("F32", "[2]", "[0, 8]") + "}", data8));
  EXPECT_NO_THROW(SafetensorsReader(dir / "ok.safetensors"));

  expect_bad_bytes(dir, craft(R"({"t": )" + entry("I64", "[1]", "[0, 8]") + "}", data8), "I64", "dtype I64");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("f32", "[2]", "[0, 8]") + "}", data8), "f32", "lower-case dtype");
  expect_bad_bytes(dir, craft(R"({"t": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}})", data8), "dtype",
                   "numeric dtype");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[3]", "[0, 8]") + "}", data8), "\"t\"",
                   "byte count does not match the shape");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F64", "[2]", "[0, 8]") + "}", data8), "\"t\"",
                   "byte count does not match the dtype");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[-2]", "[0, 8]") + "}", data8), "-2", "negative dim");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[2.0]", "[0, 8]") + "}", data8), "2.0", "float dim");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[\"2\"]", "[0, 8]") + "}", data8), "\"t\"", "string dim");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "2", "[0, 8]") + "}", data8), "shape", "shape not an array");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[4611686018427387904, 4]", "[0, 8]") + "}", data8), "\"t\"",
                   "element count overflow");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[2]", "[0, -8]") + "}", data8), "data_offsets",
                   "negative offset");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[2]", "[0]") + "}", data8), "data_offsets", "one offset");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[2]", "[0, 8.0]") + "}", data8), "data_offsets",
                   "float offset");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[0]", "[8, 0]") + "}", data8), "data_offsets",
                   "begin after end");
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[2]", "[8, 16]") + "}", data8), "data_offsets",
                   "offsets past the data");
  expect_bad_bytes(dir, craft(R"({"t": {"dtype": "F32", "shape": [2]}})", data8), "\"t\"", "no offsets");
  expect_bad_bytes(dir, craft(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": 1}})", data8), "\"t\"",
                   "extra key");
  expect_bad_bytes(dir, craft(R"({"t": [1, 2]})", data8), "\"t\"", "entry not an object");
  // Two entries with one name: nlohmann alone would keep the last one silently.
  expect_bad_bytes(dir, craft(R"({"t": )" + entry("F32", "[2]", "[0, 8]") + R"(, "t": )" + entry("F32", "[2]", "[0, 8]") + "}", data8),
                   "\"t\" twice", "repeated tensor name");
  expect_bad_bytes(dir, craft(R"({"__metadata__": {"a": "1", "a": "2"}, "t": )" + entry("F32", "[2]", "[0, 8]") + "}", data8),
                   "\"a\" twice", "repeated metadata key");
}

TEST(SafetensorsReader, RejectsDataThatIsNotTiledExactly) {
  TempDir dir;
  const std::string a = R"("a": )" + entry("F32", "[2]", "[0, 8]");
  expect_bad_bytes(dir, craft("{" + a + R"(, "b": )" + entry("F32", "[2]", "[4, 12]") + "}", std::string(12, '\0')),
                   "overlaps", "overlapping offsets");
  expect_bad_bytes(dir, craft("{" + a + R"(, "b": )" + entry("F32", "[2]", "[0, 8]") + "}", std::string(8, '\0')),
                   "overlaps", "two tensors on the same bytes");
  expect_bad_bytes(dir, craft("{" + a + R"(, "b": )" + entry("F32", "[2]", "[12, 20]") + "}", std::string(20, '\0')),
                   "hole", "a hole between tensors");
  expect_bad_bytes(dir, craft(R"({"b": )" + entry("F32", "[2]", "[4, 12]") + "}", std::string(12, '\0')), "hole",
                   "a hole before the first tensor");
  expect_bad_bytes(dir, craft("{" + a + "}", std::string(12, '\0')), "12", "extra trailing bytes");
  expect_bad_bytes(dir, craft("{}      ", std::string(1, '\0')), "1", "data without tensors");
  // Zero-size tensors may sit anywhere in the tiling.
  write_all(dir / "zeros.safetensors",
            craft("{" + a + R"(, "z": )" + entry("F32", "[0, 3]", "[8, 8]") + R"(, "y": )" +
                      entry("BF16", "[0]", "[0, 0]") + "}",
                  std::string(8, '\0')));
  SafetensorsReader reader(dir / "zeros.safetensors");
  EXPECT_EQ(reader.tensors().size(), 3u);
}

TEST(SafetensorsReader, RejectsBadMetadata) {
  TempDir dir;
  const std::string t = R"("t": )" + entry("F32", "[2]", "[0, 8]");
  const std::string data8(8, '\0');
  expect_bad_bytes(dir, craft(R"({"__metadata__": {"format": 1}, )" + t + "}", data8), "__metadata__", "number value");
  expect_bad_bytes(dir, craft(R"({"__metadata__": {"format": null}, )" + t + "}", data8), "__metadata__", "null value");
  expect_bad_bytes(dir, craft(R"({"__metadata__": {"k": {"nested": "x"}}, )" + t + "}", data8), "__metadata__",
                   "object value");
  expect_bad_bytes(dir, craft(R"({"__metadata__": ["pt"], )" + t + "}", data8), "__metadata__", "array metadata");
  expect_bad_bytes(dir, craft(R"({"__metadata__": "pt", )" + t + "}", data8), "__metadata__", "string metadata");
  write_all(dir / "ok.safetensors", craft(R"({"__metadata__": {"format": "pt", "k": ""}, )" + t + "}", data8));
  SafetensorsReader reader(dir / "ok.safetensors");
  EXPECT_EQ(reader.metadata(), (SafetensorsMetadata{{"format", "pt"}, {"k", ""}}));
}

TEST(SafetensorsReader, MissingFileOrDirectoryIsNotABadFile) {
  TempDir dir;
  try {
    SafetensorsReader reader(dir / "missing.safetensors");
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_THAT(std::string(e.what()), HasSubstr("missing.safetensors"));
  }
  try {
    SafetensorsReader reader(dir.path());
    ADD_FAILURE() << "opened a directory";
  } catch (const Error& e) {
    EXPECT_TRUE(e.kind() == ErrorKind::bad_file || e.kind() == ErrorKind::io) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// The writer: refusal to replace, missing directories, atomicity

TEST(SafetensorsWriter, RefusesAnExistingFileUnlessOverwrite) {
  TempDir dir;
  const fs::path path = dir / "out.safetensors";
  write_all(path, "precious");
  const SafetensorsLayout layout(small_entries(), small_metadata());
  try {
    write_safetensors(path, layout, produce_pattern);
    ADD_FAILURE() << "replaced an existing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_THAT(std::string(e.what()), HasSubstr("--force"));
    EXPECT_THAT(std::string(e.what()), HasSubstr(path.string()));
  }
  EXPECT_EQ(read_all(path), "precious");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.safetensors"});

  write_safetensors(path, layout, produce_pattern, IfExists::replace);
  EXPECT_EQ(fs::file_size(path), layout.file_size());
  EXPECT_EQ(SafetensorsReader(path).prefix(), layout.prefix());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.safetensors"});
}

TEST(SafetensorsWriter, MissingDirectoryIsAnIoErrorNamingIt) {
  TempDir dir;
  const fs::path missing = dir / "no" / "such";
  const SafetensorsLayout layout(small_entries(), {});
  try {
    write_safetensors(missing / "out.safetensors", layout, produce_pattern);
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_THAT(std::string(e.what()), HasSubstr(missing.string()));
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(SafetensorsWriter, TargetThatIsADirectoryIsAnIoError) {
  TempDir dir;
  fs::create_directory(dir / "sub");
  const SafetensorsLayout layout(small_entries(), {});
  for (const bool overwrite : {false, true}) {
    try {
      write_safetensors(dir / "sub", layout, produce_pattern, overwrite ? IfExists::replace : IfExists::refuse);
      ADD_FAILURE() << "wrote over a directory";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::io);
    }
    EXPECT_TRUE(fs::is_directory(dir / "sub"));
    EXPECT_EQ(dir.entries(), std::vector<std::string>{"sub"});
  }
}

struct ProducerFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

TEST(SafetensorsWriter, ProducerExceptionLeavesNoFileAndNoTemporary) {
  TempDir dir;
  const fs::path path = dir / "out.safetensors";
  // 5M f32 elements: the writer has flushed a first chunk of data to the temporary file when the
  // producer fails on the second.
  const SafetensorsLayout layout({{"big", DType::f32, {5'000'000}}, {"b", DType::f16, {4}}}, {{"format", "pt"}});
  int calls = 0;
  const auto failing = [&](const SafetensorsTensor& t, Index first, Index count, std::span<std::byte> out) {
    if (++calls == 2) {
      // The temporary file exists right now, beside the target (which may hold an older file).
      const auto names = dir.entries();
      EXPECT_EQ(std::count_if(names.begin(), names.end(), [](const std::string& n) { return n != "out.safetensors"; }), 1)
          << ::testing::PrintToString(names);
      throw ProducerFailure("producer failed");
    }
    produce_pattern(t, first, count, out);
  };
  EXPECT_THROW(write_safetensors(path, layout, failing), ProducerFailure);
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(dir.entries().empty()) << "left behind: " << (dir.entries().empty() ? "" : dir.entries()[0]);

  // The same with overwrite over an existing file: the old file is left as it was.
  write_all(path, "old contents");
  calls = 0;
  EXPECT_THROW(write_safetensors(path, layout, failing, IfExists::replace), ProducerFailure);
  EXPECT_EQ(read_all(path), "old contents");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.safetensors"});

  // And a failure on the very first call.
  fs::remove(path);
  EXPECT_THROW(write_safetensors(
                   path, layout, [](const SafetensorsTensor&, Index, Index, std::span<std::byte>) { throw ProducerFailure("x"); },
                   IfExists::refuse),
               ProducerFailure);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(SafetensorsWriter, FileIsWorldReadableLikeAnOrdinaryFile) {
  TempDir dir;
  const fs::path path = write_small(dir);
  const auto perms = fs::status(path).permissions();
  EXPECT_NE(perms & fs::perms::owner_read, fs::perms::none);
  EXPECT_NE(perms & fs::perms::group_read, fs::perms::none);
  EXPECT_NE(perms & fs::perms::others_read, fs::perms::none);
}

}  // namespace
}  // namespace shardinit
