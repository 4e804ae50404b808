// The bad-input matrix: every way a manifest or a command line can be wrong, each run through the
// shardinit command as a separate process. For every case: the documented exit status, a single
// error line that names the bad value and the tensor (and, for a manifest value, its line and
// column), and nothing new on disk: no output file, no temporary file.
//
// In a manifest, '@' marks where the bad value starts; the test removes it and expects the message
// to give that line and column (JSON has no '@' outside strings, and no case uses one in a string).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "shardinit/manifest/manifest.hpp"

#include "cli/cli_fixture.hpp"

namespace shardinit {
namespace {

namespace fs = std::filesystem;
using test::Cli;
using test::q;
using test::Result;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kBadInput = 2;  // docs/errors.md
constexpr int kIoError = 3;

struct BadInput {
  const char* name;
  const char* manifest;                // '@' marks the bad value (if the message should locate it)
  std::vector<std::string> expected;   // each must appear in the error message
  int status = kBadInput;
  std::string arguments = "init {M} -o {OUT}";  // {M}: the manifest, {OUT}: out.safetensors, {W}: the directory
};

// What gtest prints for a case (instead of its bytes).
void PrintTo(const BadInput& c, std::ostream* os) { *os << c.name; }

const std::vector<BadInput>& cases() {
  static const std::vector<BadInput> all{
      // ---- JSON that is not well-formed ----
      {"malformed JSON", R"({"seed": 1, "tensors": [@}]})", {"malformed JSON"}},
      {"empty file", "@", {"malformed JSON"}},
      {"trailing comma", R"({"seed": 1, "tensors": [{"name": "w", "shape": [2], "init": {"fn": "ones"}},@]})", {"malformed JSON"}},
      {"number beyond binary64", "{\"seed\": 1, \"tensors\": [{\"name\": \"w\", \"shape\": [2],\n \"init\": {\"fn\": \"normal\", \"std\": @1e999}}]}",
       {"malformed JSON"}},
      {"duplicate key", "{\"seed\": 1, \"tensors\": [{\"name\": \"w\", \"shape\": [2],\n \"init\": @{\"fn\": \"normal\", \"std\": 1, \"std\": 2}}]}",
       {"\"std\" appears twice", "\"w\""}},
      // ---- wrong types and unknown keys ----
      {"document is not an object", "@[1, 2]", {"expected a JSON object"}},
      {"seed is a string", R"({"seed": @"7", "tensors": []})", {"seed", "\"7\""}},
      {"negative seed", R"({"seed": @-7, "tensors": []})", {"seed", "-7"}},
      {"seed beyond 64 bits", R"({"seed": @18446744073709551616, "tensors": []})", {"seed", "2^64 - 1", "1.8446744073709552e+19"}},
      {"tensors is not an array", R"({"seed": 1, "tensors": @{"w": 1}})", {"tensors", "expected an array"}},
      {"shape is a string", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": @\"8x4\", \"init\": {\"fn\": \"ones\"}}]}",
       {"\"w\"", "shape", "\"8x4\""}},
      {"std is a string", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"init\": {\"fn\": \"normal\", \"std\": @\"0.02\"}}]}",
       {"\"w\"", "std", "\"0.02\""}},
      {"unknown top-level key", "{\"seed\": 1,\n \"sede\": @2, \"tensors\": []}", {"unknown key \"sede\""}},
      {"unknown tensor key", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"colour\": @3, \"init\": {\"fn\": \"ones\"}}]}",
       {"\"w\"", "unknown key \"colour\""}},
      {"unknown init key", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"init\": {\"fn\": \"normal\", \"sigma\": @1}}]}",
       {"\"w\"", "unknown key \"sigma\""}},
      {"missing init", "{\"seed\": 1, \"tensors\": [\n  @{\"name\": \"w\", \"shape\": [8]}]}", {"\"w\"", "missing required key \"init\""}},
      {"missing seed", "@{\"tensors\": []}", {"missing required key \"seed\""}},
      {"empty name", "{\"seed\": 1, \"tensors\": [\n  {\"name\": @\"\", \"shape\": [8], \"init\": {\"fn\": \"ones\"}}]}", {"name is empty"}},
      // ---- unknown names ----
      {"unknown fn", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"init\": {\"fn\": @\"gaussian\"}}]}",
       {"\"w\"", "\"gaussian\"", "normal"}},
      {"unknown mode", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8, 4], \"init\": {\"fn\": \"kaiming_normal\", \"mode\": @\"fan_avg\"}}]}",
       {"\"w\"", "fan_avg", "fan_in"}},
      {"unknown nonlinearity", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8, 4], \"init\": {\"fn\": \"kaiming_uniform\", \"nonlinearity\": @\"gelu\"}}]}",
       {"\"w\"", "gelu", "relu"}},
      {"unknown dtype", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"dtype\": @\"f8\", \"init\": {\"fn\": \"ones\"}}]}",
       {"\"w\"", "f8", "bf16"}},
      {"unknown layout", "{\"seed\": 1, \"parallel\": {\"tensor\": {\"mode\": \"1d\", \"size\": 2}}, \"tensors\": [\n"
                         "  {\"name\": \"w\", \"shape\": [8, 4], \"init\": {\"fn\": \"ones\"}, \"layout\": @\"linear_diag\"}]}",
       {"\"w\"", "linear_diag", "linear_col"}},
      {"unknown parallel mode", "{\"seed\": 1, \"parallel\": {\"tensor\": {\"mode\": @\"4d\", \"size\": 2}}, \"tensors\": []}",
       {"4d", "2.5d"}},
      // ---- parameters ----
      {"missing constant value", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"init\": @{\"fn\": \"constant\"}}]}",
       {"\"w\"", "missing required key \"val\""}},
      {"negative std", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"init\": @{\"fn\": \"normal\", \"std\": -0.5}}]}",
       {"\"w\"", "std=-0.5"}},
      {"uniform a above b", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"init\": @{\"fn\": \"uniform\", \"a\": 2, \"b\": 1}}]}",
       {"\"w\"", "a=2", "b=1"}},
      {"trunc_normal a equal to b", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"init\": @{\"fn\": \"trunc_normal\", \"a\": 1, \"b\": 1}}]}",
       {"\"w\"", "a=1", "b=1"}},
      {"trunc_normal a above b", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"init\": @{\"fn\": \"trunc_normal\", \"a\": 3, \"b\": -3}}]}",
       {"\"w\"", "a=3", "b=-3"}},
      {"f16 overflow", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"dtype\": \"f16\", \"init\": @{\"fn\": \"constant\", \"val\": 1e6}}]}",
       {"\"w\"", "f16"}},
      // ---- shapes and fans ----
      {"negative dimension", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8, @-4], \"init\": {\"fn\": \"ones\"}}]}",
       {"\"w\"", "shape[1]", "-4"}},
      {"fractional dimension", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [@2.5], \"init\": {\"fn\": \"ones\"}}]}",
       {"\"w\"", "shape[0]", "2.5"}},
      {"tensor of more than 2^63 - 1 bytes", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": @[4611686018427387904], \"init\": {\"fn\": \"normal\"}}]}",
       {"\"w\"", "[4611686018427387904] elements of f32", "more than 2^63 - 1 bytes"}},
      {"tensors adding up to more than 2^63 - 1 bytes",
       "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"a\", \"shape\": [1152921504606846976], \"init\": {\"fn\": \"zeros\"}},\n"
       "  @{\"name\": \"b\", \"shape\": [1152921504606846976], \"init\": {\"fn\": \"zeros\"}}]}",
       {"\"b\"", "add up to more than 2^63 - 1 bytes"}},
      {"one tensor whose data leaves no room for its header",
       "{\"seed\": 1, \"tensors\": [\n  @{\"name\": \"w\", \"shape\": [2305843009213693951], \"init\": {\"fn\": \"zeros\"}}]}",
       {"tensor \"w\" needs 9223372036854775804 bytes of data", "more than one safetensors file holds (9223372036754775799"}},
      {"a tensor named like the header's metadata", "{\"seed\": 1, \"tensors\": [\n  {\"name\": @\"__metadata__\", \"shape\": [2], \"init\": {\"fn\": \"ones\"}}]}",
       {"\"__metadata__\" is reserved by safetensors"}},
      {"manifest nested too deeply", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [2], \"init\": {\"fn\": \"ones\"}, \"x\": "
       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[@[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]}",
       {"nested deeper than 64 levels"}},
      {"name with control characters and a NUL", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"a\\u0000b\\nc\\u001b[1m\", \"shape\": [8], \"init\": @{\"fn\": \"normal\", \"std\": -1}}]}",
       {"(\"a\\x00b\\nc\\x1b[1m\")", "std=-1"}},
      {"overflowing shape", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": @[4294967296, 4294967296], \"init\": {\"fn\": \"ones\"}}]}",
       {"\"w\"", "4294967296"}},
      {"zero explicit fan", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"fan_in\": @0, \"init\": {\"fn\": \"lecun_normal\"}}]}",
       {"\"w\"", "fan_in: a fan must be positive, got 0"}},
      {"zero fan from the shape", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8, 4, 0, 2], \"init\": {\"fn\": \"ones\"}},\n"
                                  "  {\"name\": \"v\", \"shape\": [], \"init\": @{\"fn\": \"xavier_normal\"}}]}",
       {"\"v\"", "fan"}},
      // ---- names, streams, meshes, layouts ----
      {"duplicate names", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"init\": {\"fn\": \"ones\"}},\n"
                          "  {\"name\": @\"w\", \"shape\": [4], \"init\": {\"fn\": \"zeros\"}}]}",
       {"\"w\"", "appears twice"}},
      {"duplicate streams", "{\"seed\": 1, \"tensors\": [\n  {\"name\": \"w\", \"shape\": [8], \"stream\": 5, \"init\": {\"fn\": \"normal\"}},\n"
                            "  @{\"name\": \"v\", \"shape\": [8], \"stream\": 5, \"init\": {\"fn\": \"normal\"}}]}",
       {"\"w\"", "\"v\"", "stream 5"}},
      {"mesh and parallel", "{\"seed\": 1, \"mesh\": [2], \"parallel\": @{\"tensor\": {\"mode\": \"1d\", \"size\": 2}}, \"tensors\": []}",
       {"mesh", "parallel"}},
      {"zero mesh dimension", "{\"seed\": 1, \"mesh\": [2, @0], \"tensors\": []}", {"mesh[1]: a mesh dimension must be between 1 and 2^31 - 1, got 0"}},
      {"mesh axis that does not exist", "{\"seed\": 1, \"mesh\": [2], \"tensors\": [\n"
                                        "  {\"name\": \"w\", \"shape\": [8, 4], \"init\": {\"fn\": \"ones\"}, \"layout\": {\"shard\": {\"0\": [@1]}}}]}",
       {"\"w\"", "mesh axis 1"}},
      {"shard of a dimension that does not exist", "{\"seed\": 1, \"mesh\": [2], \"tensors\": [\n"
                                                   "  {\"name\": \"w\", \"shape\": [8, 4], \"init\": {\"fn\": \"ones\"}, \"layout\": {\"shard\": {\"2\": @[0]}}}]}",
       {"\"w\"", "\"2\""}},
      {"2d size that is not a square", "{\"seed\": 1, \"parallel\": {\"tensor\": @{\"mode\": \"2d\", \"size\": 6}}, \"tensors\": []}", {"6", "square"}},
      {"preset that needs a divisible shape", "{\"seed\": 1, \"parallel\": {\"tensor\": {\"mode\": \"1d\", \"size\": 4}}, \"tensors\": [\n"
                                              "  {\"name\": \"w\", \"shape\": [6, 8], \"init\": {\"fn\": \"ones\"}, \"layout\": @\"linear_col\"}]}",
       {"\"w\"", "splits dimension 0 of shape [6, 8] into 4 parts"}},
      {"2d preset with an indivisible shape", "{\"seed\": 1, \"parallel\": {\"tensor\": {\"mode\": \"2d\", \"size\": 4}}, \"tensors\": [\n"
                                              "  {\"name\": \"w\", \"shape\": [8, 5], \"init\": {\"fn\": \"ones\"}, \"layout\": @\"linear\"}]}",
       {"\"w\"", "layout \"linear\" of mode 2d splits dimension 1 of shape [8, 5] into 2 parts", "divide it evenly"}},
      {"mesh product is not the world size",
       R"({"seed": 1, "mesh": [2, 2], "tensors": [{"name": "w", "shape": [8, 4], "init": {"fn": "ones"}}]})",
       {"[2, 2]", "4 ranks", "3 ranks"}, kBadInput, "init {M} --per-rank {W}/ranks --rank 0 --world 3"},
      {"parallel size is not the world size",
       R"({"seed": 1, "parallel": {"tensor": {"mode": "1d", "size": 4}}, "tensors": []})",
       {"4", "2 ranks"}, kBadInput, "init {M} --per-rank {W}/ranks --rank 1 --world 2"},
      // ---- command line and output ----
      {"missing manifest", nullptr, {"no-such.json"}, kIoError, "init {W}/no-such.json -o {OUT}"},
      {"missing output directory", R"({"seed": 1, "tensors": []})", {"no-such-dir"}, kIoError, "init {M} -o {W}/no-such-dir/out.safetensors"},
      {"output under a regular file", R"({"seed": 1, "tensors": []})", {"manifest.json/out.safetensors"}, kIoError,
       "init {M} -o {M}/out.safetensors"},
      {"rank outside the world", R"({"seed": 1, "tensors": []})", {"rank 5", "world of 4"}, kBadInput, "init {M} --per-rank {W}/ranks --rank 5 --world 4"},
      {"unknown option", R"({"seed": 1, "tensors": []})", {"--sead"}, kBadInput, "init {M} -o {OUT} --sead 3"},
      {"zero threads", R"({"seed": 1, "tensors": []})", {"--threads", "0"}, kBadInput, "init {M} -o {OUT} --threads 0"},
      {"watchdog that is not a number", R"({"seed": 1, "tensors": []})", {"--watchdog", "nan"}, kBadInput, "init {M} -o {OUT} --watchdog nan"},
      {"negative watchdog", R"({"seed": 1, "tensors": []})", {"--watchdog", "-1"}, kBadInput, "init {M} -o {OUT} --watchdog -1"},
      {"output is the manifest, with --force", R"({"seed": 1, "tensors": []})", {"refusing to write", "the manifest", "an input of this run"},
       kBadInput, "init {M} -o {M} --force"},
      {"output is the manifest, without --force", R"({"seed": 1, "tensors": []})", {"an input of this run"}, kBadInput, "init {M} -o {M}"},
      {"output is a directory, with --force", R"({"seed": 1, "tensors": []})", {"it is a directory"}, kIoError, "init {M} -o {W} --force"},
      {"output is a character device, with --force", R"({"seed": 1, "tensors": []})", {"/dev/null", "is a character device",
       "replaces only regular files"}, kIoError, "init {M} -o /dev/null --force"},
      {"manifest is a character device", nullptr, {"manifest /dev/zero is a character device, not a regular file"}, kIoError,
       "init /dev/zero -o {OUT}"},
      {"manifest is a directory", nullptr, {"is a directory, not a regular file"}, kIoError, "init {W} -o {OUT}"},
      {"per-rank directory is a file", R"({"seed": 1, "tensors": []})", {"cannot make the output directory"}, kIoError,
       "init {M} --per-rank {M} --rank 0 --world 2"},
      {"not enough space for the file", R"({"seed": 1, "tensors": [{"name": "w", "shape": [1099511627776], "init": {"fn": "zeros"}}]})",
       {"needs 43980465", "no space left", "nothing was written"}, kIoError, "init {M} -o {OUT}"},
      {"bench buffer of more than 2^63 - 1 bytes", nullptr, {"--elements 4611686018427387904", "more than 2^63 - 1 bytes"}, kBadInput,
       "bench --elements 4611686018427387904 --threads 1 --repeat 1"},
  };
  return all;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// "line L, column C" of the '@' in `text` (which must have one), as the messages count (1-based, bytes).
std::string marked_position(const std::string& text) {
  const std::size_t at = text.find('@');
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(at - line_start + 1);
}

class BadInputs : public Cli, public ::testing::WithParamInterface<BadInput> {};

TEST_P(BadInputs, ExitStatusMessageAndNothingOnDisk) {
  const BadInput& c = GetParam();
  const fs::path manifest_path = work_ / "manifest.json";
  std::vector<std::string> expected = c.expected;
  if (c.manifest != nullptr) {
    std::string text = c.manifest;
    if (text.find('@') != std::string::npos) {
      expected.push_back(marked_position(text));
      text.erase(text.find('@'), 1);
    }
    manifest(text);
  }
  const std::vector<std::string> before = entries(work_);
  std::string arguments = replace_all(c.arguments, "{M}", q(manifest_path));
  arguments = replace_all(arguments, "{OUT}", q(work_ / "out.safetensors"));
  arguments = replace_all(arguments, "{W}", q(work_));
  const Result r = run(arguments);

  EXPECT_EQ(r.status, c.status) << r.err;
  // Matched against the message without the (random) working directory's name, so that a digit or
  // a word expected in the message is never found in the path instead.
  const std::string message = replace_all(r.err, work_.string(), "{W}");
  for (const std::string& e : expected) EXPECT_THAT(message, HasSubstr(e)) << c.name;
  // One error line, the message on it: "shardinit: error: ..." (CLI11's usage errors have their own form).
  std::size_t lines = 0;
  for (const char ch : r.err) lines += ch == '\n';
  EXPECT_EQ(lines, 1u) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(entries(work_), before) << "a failed run must leave nothing behind";
}

INSTANTIATE_TEST_SUITE_P(Matrix, BadInputs, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string name;
  for (const char ch : std::string(info.param.name)) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return name;
});

// ---- untrusted files given to verify ----------------------------------------------------------

// A safetensors file from its header text and data: the 8-byte little-endian length, then both.
std::string safetensors_bytes(const std::string& header, const std::string& data, std::uint64_t declared_length) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((declared_length >> (8 * i)) & 0xFF);
  return bytes + header + data;
}
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return safetensors_bytes(header, data, header.size());
}

struct HostileFile {
  const char* name;
  std::string bytes;
  std::string expected;  // in the message
};

void PrintTo(const HostileFile& f, std::ostream* os) { *os << f.name; }

const std::vector<HostileFile>& hostile_files() {
  const std::string w = R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  static const std::vector<HostileFile> all{
      {"empty file", "", "fewer than the 8-byte header length"},
      {"header length beyond the limit", safetensors_bytes("{}", "", std::uint64_t{1} << 63), "exceeds the limit"},
      {"header length beyond the file", safetensors_bytes("{" + w + "}", std::string(8, '\0'), 4096), "runs past the end"},
      {"truncated data", safetensors_bytes("{" + w + "}", std::string(5, '\0')), "outside the 5 bytes of data"},
      {"header not JSON", safetensors_bytes("{\"w\": [1, 2", std::string(8, '\0')), "header is not JSON"},
      {"header with a NUL", safetensors_bytes(std::string("{}\0 ", 4), ""), "NUL byte"},
      {"header not an object", safetensors_bytes("[1, 2, 3]", ""), "does not start with '{'"},
      {"repeated tensor", safetensors_bytes("{" + w + ", " + w + "}", std::string(8, '\0')), "\"w\" twice"},
      {"overlapping offsets",
       safetensors_bytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                         std::string(12, '\0')),
       "overlaps"},
      {"wrong dtype", safetensors_bytes(R"({"w": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", std::string(8, '\0')),
       "I64"},
      {"element count overflow",
       safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}})", std::string(8, '\0')),
       "too many elements"},
      {"deeply nested header", safetensors_bytes("{\"w\": " + std::string(100000, '[') + std::string(100000, ']') + "}", ""),
       "nested deeper than 64 levels at line 1, column 70"},
  };
  return all;
}

class HostileFiles : public Cli, public ::testing::WithParamInterface<HostileFile> {};

// verify of a hostile file: exit 1, one line saying why the file is invalid, no crash, no hang.
TEST_P(HostileFiles, VerifyRefusesWithExit1) {
  const HostileFile& f = GetParam();
  const fs::path m = manifest(R"({"seed": 1, "tensors": [{"name": "w", "shape": [2], "init": {"fn": "ones"}}]})");
  const fs::path file = work_ / "hostile.safetensors";
  test::write_all(file, f.bytes);
  const Result r = run("verify " + q(m) + " " + q(file));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("not a valid safetensors file"));
  EXPECT_THAT(r.err, HasSubstr(f.expected));
  EXPECT_THAT(r.err, HasSubstr("hostile.safetensors"));
  std::size_t lines = 0;
  for (const char ch : r.err) lines += ch == '\n';
  EXPECT_EQ(lines, 1u) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Verify, HostileFiles, ::testing::ValuesIn(hostile_files()), [](const auto& info) {
  std::string name;
  for (const char ch : std::string(info.param.name)) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return name;
});

// inspect of a hostile file: the same refusal, exit 1, no crash (a deeply nested dtype once crashed
// both verify and inspect: the message builder recursed).
TEST_P(HostileFiles, InspectRefusesWithExit1) {
  const HostileFile& f = GetParam();
  const fs::path file = work_ / "hostile.safetensors";
  test::write_all(file, f.bytes);
  const Result r = run("inspect " + q(file));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("not a valid safetensors file"));
  EXPECT_THAT(r.err, HasSubstr(f.expected));
  EXPECT_TRUE(r.out.empty()) << r.out;
}

// ---- inputs that are not regular files: refused at once, never a read that blocks -------------

TEST_F(Cli, AFifoIsRefusedWhereverAFileIsRead) {
  const fs::path m = manifest(R"({"seed": 1, "tensors": [{"name": "w", "shape": [2], "init": {"fn": "ones"}}]})");
  const fs::path fifo = work_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const struct {
    std::string arguments;
    int status;
    std::string expected;
  } cases[] = {
      {"verify " + q(m) + " " + q(fifo), 1, "it is a FIFO, not a regular file"},
      {"inspect " + q(fifo), 1, "it is a FIFO, not a regular file"},
      {"init " + q(fifo) + " -o " + q(work_ / "out.safetensors"), kIoError, "manifest " + fifo.string() + " is a FIFO"},
      {"verify " + q(fifo) + " " + q(work_ / "out.safetensors"), kIoError, "is a FIFO, not a regular file"},
      {"init " + q(m) + " -o " + q(fifo) + " --force", kIoError, "is a FIFO, and shardinit replaces only regular files"},
  };
  for (const auto& c : cases) {
    const Result r = run_bounded(c.arguments);
    EXPECT_EQ(r.status, c.status) << c.arguments << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.expected)) << c.arguments;
  }
  EXPECT_TRUE(fs::is_fifo(fifo));
  // A FIFO named like a rank file in a per-rank directory.
  fs::create_directory(work_ / "ranks");
  ASSERT_EQ(::mkfifo((work_ / "ranks" / "rank-00000-of-00001.safetensors").c_str(), 0600), 0);
  const Result r = run_bounded("inspect " + q(work_ / "ranks"));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("it is a FIFO"));
}

TEST_F(Cli, AManifestLargerThanTheLimitIsRefusedUnread) {
  const fs::path m = work_ / "huge.json";
  { std::ofstream(m).put(' '); }
  fs::resize_file(m, kMaxManifestBytes + 1);  // sparse: nothing to read, refused by its size
  const Result r = run_bounded("init " + q(m) + " -o " + q(work_ / "out.safetensors"));
  EXPECT_EQ(r.status, kBadInput) << r.err;
  EXPECT_THAT(r.err, HasSubstr("100000001 bytes, more than the limit of 100000000"));
  EXPECT_EQ(entries(work_), std::vector<std::string>{"huge.json"});
}

// A header the reference reader refuses (over 100,000,000 bytes) is never written: exit 2 before a
// byte is generated. Here: 12 tensors whose names take 4.5 MB each (a name is in the header twice:
// as the tensor's key and in the recorded spec).
TEST_F(Cli, AHeaderTheReferenceReaderRefusesIsNeverWritten) {
  std::string text = R"({"seed": 1, "tensors": [)";
  for (int i = 0; i < 12; ++i) {
    text += std::string(i ? "," : "") + R"({"name": ")" + std::string(4'500'000, static_cast<char>('a' + i)) +
            R"(", "shape": [1024, 1024], "init": {"fn": "normal"}})";
  }
  const fs::path m = manifest(text + "]}");
  for (const std::string& target : {"-o " + q(work_ / "out.safetensors"), "--per-rank " + q(work_ / "ranks") + " --rank 0 --world 2"}) {
    const Result r = run_bounded("init " + q(m) + " " + target);
    EXPECT_EQ(r.status, kBadInput) << r.err;
    EXPECT_THAT(r.err, HasSubstr("bytes, more than the 100000000 bytes the safetensors library reads"));
    EXPECT_EQ(entries(work_), std::vector<std::string>{"manifest.json"});
  }
}

// What shardinit recorded in a file is untrusted too: a recorded spec nested a million deep is shown
// as not recorded; per-rank metadata nested that deep is refused. Neither crashes.
TEST_F(Cli, HostileRecordedMetadataNeverCrashesInspect) {
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  const std::string w = R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  const fs::path file = work_ / "spec.safetensors";
  test::write_all(file, safetensors_bytes(R"({"__metadata__": {"shardinit.spec": ")" + deep + R"("}, )" + w + "}",
                                          std::string(8, '\0')));
  Result r = run_bounded("inspect " + q(file));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("not recorded"));
  fs::create_directory(work_ / "ranks");
  test::write_all(work_ / "ranks" / "rank-00000-of-00001.safetensors",
                  safetensors_bytes(R"({"__metadata__": {"shardinit.rank": "0", "shardinit.world": "1", "shardinit.seed": "1", )"
                                    R"("shardinit.manifest_digest": "sha256:0", "shardinit.shards": ")" + deep + R"("}, )" + w + "}",
                                    std::string(8, '\0')));
  r = run_bounded("inspect " + q(work_ / "ranks"));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("nested deeper than 64 levels"));
}

// A recorded spec is untrusted: a parameter key with an escape sequence is shown escaped. Values at
// both ends of binary64's range give finite moments and bin edges (their difference overflows).
TEST_F(Cli, InspectEscapesRecordedKeysAndStaysFiniteAtTheEndsOfTheRange) {
  const std::string spec = R"({\"seed\":1,\"tensors\":[{\"name\":\"w\",\"dtype\":\"f64\",\"shape\":[2],)"
                           R"(\"init\":{\"fn\":\"normal\",\"\\u001b[2J\":1}}]})";
  std::string data(16, '\0');
  const double ends[2] = {1.7e308, -1.7e308};
  std::memcpy(data.data(), ends, sizeof ends);
  const fs::path file = work_ / "ends.safetensors";
  test::write_all(file, safetensors_bytes(R"({"__metadata__": {"shardinit.spec": ")" + spec +
                                          R"("}, "w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})", data));
  const Result r = run("inspect " + q(file) + " --hist --bins 4");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("normal(\\x1b[2J=1)"));
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  EXPECT_THAT(r.out, HasSubstr("mean 0  std 1.7e+308  min -1.7e+308  max 1.7e+308"));
  EXPECT_THAT(r.out, HasSubstr("[-1.7e+308, -8.5e+307)"));
  EXPECT_THAT(r.out, HasSubstr("[8.5e+307, 1.7e+308]"));
  EXPECT_THAT(r.out, Not(HasSubstr("inf")));
  EXPECT_THAT(r.out, Not(HasSubstr("nan")));
}

// A name with a newline, an escape sequence and a NUL is escaped wherever it is printed: every
// message stays one line, and inspect's listing cannot be forged or cut.
TEST_F(Cli, NamesAreEscapedInEveryMessageAndListing) {
  const fs::path m = manifest("{\"seed\": 1, \"tensors\": [{\"name\": \"a\\nb\\u0000c\\u001b]\", \"shape\": [4], \"init\": {\"fn\": \"normal\"}}]}");
  const fs::path out = work_ / "out.safetensors";
  ASSERT_EQ(run("init -q " + q(m) + " -o " + q(out)).status, 0);
  const Result listing = run("inspect " + q(out));
  EXPECT_EQ(listing.status, 0) << listing.err;
  EXPECT_THAT(listing.out, HasSubstr("a\\nb\\x00c\\x1b]  f32 [4]"));
  EXPECT_EQ(listing.out.find('\x1b'), std::string::npos);
  // Corrupt the last data byte: the mismatch names the tensor, escaped, on one line.
  std::string bytes = test::read_all(out);
  bytes.back() = static_cast<char>(bytes.back() ^ 0x5a);
  test::write_all(out, bytes);
  const Result r = run("verify " + q(m) + " " + q(out));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("tensor 'a\\nb\\x00c\\x1b]' differs"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// An existing output is refused (and left untouched) unless --force is given.
TEST_F(Cli, ExistingOutputIsRefusedAndUntouchedWithoutForce) {
  const fs::path m = manifest(R"({"seed": 1, "tensors": [{"name": "w", "shape": [8], "init": {"fn": "ones"}}]})");
  const fs::path out = work_ / "out.safetensors";
  test::write_all(out, "precious");
  const Result r = run("init " + q(m) + " -o " + q(out));
  EXPECT_EQ(r.status, kIoError) << r.err;
  EXPECT_THAT(r.err, HasSubstr("out.safetensors"));
  EXPECT_THAT(r.err, HasSubstr("--force"));
  EXPECT_EQ(test::read_all(out), "precious");
  EXPECT_EQ(entries(work_), (std::vector<std::string>{"manifest.json", "out.safetensors"}));
  EXPECT_EQ(run("init " + q(m) + " -o " + q(out) + " --force").status, 0);
  EXPECT_NE(test::read_all(out), "precious");
}

}  // namespace
}  // namespace shardinit
