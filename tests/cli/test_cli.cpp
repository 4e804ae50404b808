// The shardinit command, run as a separate process: exit statuses, messages, and what it leaves on disk.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "shardinit/format/safetensors.hpp"

#include "cli/cli_fixture.hpp"

namespace shardinit {
namespace {

namespace fs = std::filesystem;
using test::Cli;
using test::Result;
using test::q;
using test::quote;
using test::kCli;
using test::read_all;
using test::write_all;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSmall = R"({"seed": 42, "tensors": [
  {"name": "fc1.weight", "shape": [64, 32], "init": {"fn": "kaiming_uniform", "a": 2.23606797749979}},
  {"name": "fc1.bias", "shape": [64], "init": {"fn": "xavier_uniform", "a": 1, "scale": 1}, "fan_in": 32},
  {"name": "wte", "shape": [50, 32], "dtype": "bf16", "init": {"fn": "normal", "std": 0.02}},
  {"name": "ln.weight", "shape": [32], "init": {"fn": "ones"}}
]})";

// 1M f32 elements: a 4 MB file, more than 100 blocks of any size.
constexpr const char* kFourMegabytes =
    R"({"seed": 1, "tensors": [{"name": "big", "shape": [1024, 1024], "init": {"fn": "normal", "std": 0.02}}]})";

TEST_F(Cli, InitThenVerify) {
  const fs::path m = manifest(kSmall);
  const fs::path out = work_ / "model.safetensors";
  const Result init = run("init " + q(m) + " -o " + q(out));
  EXPECT_EQ(init.status, 0) << init.err;
  EXPECT_THAT(init.err, HasSubstr("4 tensors"));
  ASSERT_TRUE(fs::exists(out));
  EXPECT_EQ(entries(work_), (std::vector<std::string>{"manifest.json", "model.safetensors"}));

  const Result verify = run("verify " + q(m) + " " + q(out));
  EXPECT_EQ(verify.status, 0) << verify.err;
  EXPECT_THAT(verify.err, HasSubstr("OK"));

  // The file is what the library reads as a valid safetensors file of four tensors.
  SafetensorsReader reader(out);
  EXPECT_EQ(reader.tensors().size(), 4u);
  EXPECT_EQ(reader.metadata().at("format"), "pt");
}

// verify reads a Hugging Face directory as its index splits it, whatever --max-shard-size init was
// given; --max-shard-size makes it check that split too. An index that does not split the manifest's
// tensors is a mismatch naming what is wrong, as is every other change to the directory.
TEST_F(Cli, VerifyReadsADirectoryAsItsIndexSplitsIt) {
  const fs::path m = manifest(kSmall);
  // fc1.weight 8192 bytes, fc1.bias 256, wte 3200, ln.weight 128: at 3KB, three shards
  // ({fc1.weight}, {wte}, {fc1.bias, ln.weight}); at 4KB two.
  const fs::path dir = work_ / "hf";
  const auto init = [&] {
    fs::remove_all(dir);
    const Result r = run("init -q " + q(m) + " -o " + q(dir) + " --format hf --max-shard-size 3KB");
    ASSERT_EQ(r.status, 0) << r.err;
  };
  init();
  ASSERT_TRUE(fs::exists(dir / "model-00003-of-00003.safetensors"));
  fs::copy_file(dir / "model.safetensors.index.json", work_ / "hf-index-copy");
  for (const char* options : {"", " --format hf", " --max-shard-size 3KB", " --max-shard-size 3000B"}) {
    const Result r = run("verify " + q(m) + " " + q(dir) + options);
    EXPECT_EQ(r.status, 0) << options << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("OK")) << options;
  }
  const Result other_size = run("verify " + q(m) + " " + q(dir) + " --max-shard-size 4KB");
  EXPECT_EQ(other_size.status, 1) << other_size.err;
  EXPECT_THAT(other_size.err, HasSubstr("another --max-shard-size"));
  // The index changed: each is a mismatch (exit 1) naming the problem.
  const fs::path index = dir / "model.safetensors.index.json";
  const auto replaced = [&](const std::string& from, const std::string& to) {
    std::string text = read_all(index);
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
  };
  const std::pair<std::string, std::string> cases[] = {
      {replaced("\"ln.weight\"", "\"ln.bias\""), "tensor \"ln.bias\", which the manifest does not have"},
      {replaced("\"ln.weight\": \"model-00003-of-00003", "\"ln.weight\": \"model-00001-of-00003"),
       "model.safetensors.index.json differs from the expected index"},  // the split it claims is not the files'
      {replaced("model-00002-of-00003", "model-00002-of-00004"), "shards of 4 and of 3"},
      {"{not json", "not a Hugging Face index file"},
  };
  for (const auto& [text, expected] : cases) {
    init();
    write_all(index, text);
    const Result r = run("verify " + q(m) + " " + q(dir));
    EXPECT_EQ(r.status, 1) << expected << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("MISMATCH")) << expected;
    EXPECT_THAT(r.err, HasSubstr(expected));
  }
  // An index larger than any index could be: a mismatch, not a bad argument (a sparse file).
  init();
  ASSERT_EQ(::truncate(index.c_str(), (off_t{1} << 30) + 1), 0);
  const Result huge = run("verify " + q(m) + " " + q(dir));
  EXPECT_EQ(huge.status, 1) << huge.err;
  EXPECT_THAT(huge.err, HasSubstr("limit"));
  // Weights files the checkpoint does not name, which a loader would read: a model.safetensors beside
  // the index (transformers loads it first), a shard of another split. Other files are the user's.
  for (const char* stray : {"model.safetensors", "model-00004-of-00004.safetensors", "model.safetensors.index.json"}) {
    init();
    if (std::string(stray) == "model.safetensors.index.json") {
      fs::remove_all(dir);
      ASSERT_EQ(run("init -q " + q(m) + " -o " + q(dir) + " --format hf").status, 0);  // one file, no index
      write_all(dir / stray, read_all(work_ / "hf-index-copy"));
    } else {
      fs::copy_file(dir / "model-00003-of-00003.safetensors", dir / stray);
    }
    write_all(dir / "tokenizer.json", "{}");
    const Result r = run("verify " + q(m) + " " + q(dir) + " --max-shard-size 3KB");
    const Result as_found = run("verify " + q(m) + " " + q(dir));
    EXPECT_EQ(as_found.status, 1) << stray << ": " << as_found.err;
    // A one-file directory with an index beside it: the index's shards are missing, or model.safetensors is stray.
    EXPECT_THAT(as_found.err, HasSubstr(std::string(stray) == "model.safetensors.index.json" ? "model" : stray));
    EXPECT_EQ(r.status, 1) << stray << ": " << r.err;
    fs::remove(dir / "tokenizer.json");
    if (std::string(stray) == "model.safetensors") {
      EXPECT_THAT(as_found.err, HasSubstr("transformers would load it"));
    }
  }
  // No index: read as one model.safetensors, which is not there.
  init();
  fs::remove(index);
  const Result no_index = run("verify " + q(m) + " " + q(dir));
  EXPECT_EQ(no_index.status, 1) << no_index.err;
  EXPECT_THAT(no_index.err, HasSubstr("model.safetensors is missing"));
  // No directory at all: an input that cannot be read (3), with or without the size.
  for (const char* options : {" --format hf", " --max-shard-size 3KB"}) {
    const Result missing = run("verify " + q(m) + " " + q(work_ / "no-such-dir") + options);
    EXPECT_EQ(missing.status, 3) << options << ": " << missing.err;
    EXPECT_THAT(missing.err, HasSubstr("no such directory"));
  }
  // A single-file directory verifies without the size too.
  fs::remove_all(dir);
  ASSERT_EQ(run("init -q " + q(m) + " -o " + q(dir) + " --format hf").status, 0);
  EXPECT_EQ(run("verify -q " + q(m) + " " + q(dir)).status, 0);
}

TEST_F(Cli, QuietPrintsNothingOnSuccess) {
  const fs::path m = manifest(kSmall);
  const fs::path out = work_ / "model.safetensors";
  const Result init = run("init --quiet " + q(m) + " -o " + q(out));
  EXPECT_EQ(init.status, 0) << init.err;
  EXPECT_EQ(init.out, "");
  EXPECT_EQ(init.err, "");
  const Result verify = run("verify -q " + q(m) + " " + q(out));
  EXPECT_EQ(verify.status, 0) << verify.err;
  EXPECT_EQ(verify.out, "");
  EXPECT_EQ(verify.err, "");
}

TEST_F(Cli, CorruptDataByteMakesVerifyExit1NamingTensorAndIndex) {
  const fs::path m = manifest(kSmall);
  const fs::path out = work_ / "model.safetensors";
  ASSERT_EQ(run("init -q " + q(m) + " -o " + q(out)).status, 0);
  std::string bytes = read_all(out);
  std::string tensor;
  std::uint64_t index = 0;
  std::uint64_t at = 0;
  {
    SafetensorsReader reader(out);
    const SafetensorsTensor* w = reader.find("fc1.weight");
    ASSERT_NE(w, nullptr);
    index = 1234;  // element [38, 18] of [64, 32]
    at = reader.data_start() + w->begin + 4 * index + 1;
    tensor = w->name;
  }
  bytes[at] = static_cast<char>(bytes[at] ^ 0x40);
  write_all(out, bytes);
  const Result verify = run("verify " + q(m) + " " + q(out));
  EXPECT_EQ(verify.status, 1) << verify.err;
  EXPECT_THAT(verify.err, HasSubstr("fc1.weight"));
  EXPECT_THAT(verify.err, HasSubstr("1234"));
  EXPECT_THAT(verify.err, HasSubstr("MISMATCH"));

  // The last byte of the file: the last element of the last tensor in data order.
  bytes = read_all(out);
  bytes[at] = static_cast<char>(bytes[at] ^ 0x40);  // undo
  bytes.back() = static_cast<char>(bytes.back() ^ 0x01);
  write_all(out, bytes);
  std::string last_name;
  Index last_index = 0;
  {
    SafetensorsReader reader(out);
    const SafetensorsTensor& last = reader.tensors().back();
    last_name = last.name;
    last_index = element_count(last.shape) - 1;
  }
  const Result verify_last = run("verify " + q(m) + " " + q(out));
  EXPECT_EQ(verify_last.status, 1) << verify_last.err;
  EXPECT_THAT(verify_last.err, HasSubstr(last_name));
  EXPECT_THAT(verify_last.err, HasSubstr(std::to_string(last_index)));
}

TEST_F(Cli, VerifyOfAFileThatIsNotSafetensorsExits1) {
  const fs::path m = manifest(kSmall);
  write_all(work_ / "junk.safetensors", "definitely not safetensors");
  const Result r = run("verify " + q(m) + " " + q(work_ / "junk.safetensors"));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("junk.safetensors"));
}

TEST_F(Cli, VerifyOfAMissingFileExits3) {
  const fs::path m = manifest(kSmall);
  const Result r = run("verify " + q(m) + " " + q(work_ / "missing.safetensors"));
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("missing.safetensors"));
}

TEST_F(Cli, VerifyWithABadManifestExits2) {
  const fs::path m = manifest(kSmall);
  const fs::path out = work_ / "model.safetensors";
  ASSERT_EQ(run("init -q " + q(m) + " -o " + q(out)).status, 0);
  const fs::path bad = manifest(R"({"seed": 42, "tensors": [}")", "bad.json");
  const Result r = run("verify " + q(bad) + " " + q(out));
  EXPECT_EQ(r.status, 2) << r.err;
}

TEST_F(Cli, VerifyAgainstAnotherSeedExits1) {
  const fs::path m = manifest(kSmall);
  const fs::path out = work_ / "model.safetensors";
  ASSERT_EQ(run("init -q " + q(m) + " -o " + q(out)).status, 0);
  std::string other = kSmall;
  other.replace(other.find("42"), 2, "43");
  const fs::path m2 = manifest(other, "other.json");
  const Result r = run("verify " + q(m2) + " " + q(out));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("metadata"));
}

TEST_F(Cli, InitRefusesAnExistingOutputAndForceReplacesIt) {
  const fs::path m = manifest(kSmall);
  const fs::path out = work_ / "model.safetensors";
  write_all(out, "precious bytes");
  const auto mtime = fs::last_write_time(out);
  const Result refused = run("init " + q(m) + " -o " + q(out));
  EXPECT_NE(refused.status, 0);
  EXPECT_EQ(refused.status, 3) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("--force"));
  EXPECT_EQ(read_all(out), "precious bytes");
  EXPECT_EQ(fs::last_write_time(out), mtime);
  EXPECT_EQ(entries(work_), (std::vector<std::string>{"manifest.json", "model.safetensors"}));

  const Result forced = run("init --force " + q(m) + " -o " + q(out));
  EXPECT_EQ(forced.status, 0) << forced.err;
  EXPECT_NE(read_all(out), "precious bytes");
  EXPECT_EQ(run("verify " + q(m) + " " + q(out)).status, 0);
  EXPECT_EQ(entries(work_), (std::vector<std::string>{"manifest.json", "model.safetensors"}));
  // -f is the short form.
  EXPECT_EQ(run("init -f -q " + q(m) + " -o " + q(out)).status, 0);
}

TEST_F(Cli, BadManifestExits2WithTheMessageAndLeavesNothing) {
  const fs::path out = work_ / "model.safetensors";
  const std::pair<const char*, const char*> cases[] = {
      {R"({"seed": 1, "tensors": [)", "line"},
      {R"({"seed": 1, "tensors": [{"name": "w", "shape": [4], "init": {"fn": "normal", "std": -1}}]})", "std"},
      {R"({"seed": 1, "tensors": [{"name": "w", "shape": [4], "init": {"fn": "normal", "stdd": 1}}]})", "stdd"},
      {R"({"seed": 1, "tensors": [{"name": "w", "shape": [4], "init": {"fn": "xavier_uniform"}}]})", "fan_in"},
      {R"({"seed": 1, "tensors": [{"name": "w", "shape": [4], "dtype": "f8", "init": {"fn": "zeros"}}]})", "f8"},
      {R"({"seed": -1, "tensors": []})", "seed"},
      // The last tensor is the bad one: nothing is written for the good ones either.
      {R"({"seed": 1, "tensors": [{"name": "a", "shape": [4], "init": {"fn": "zeros"}},
          {"name": "a", "shape": [4], "init": {"fn": "zeros"}}]})", "twice"},
  };
  for (const auto& [text, part] : cases) {
    const fs::path m = manifest(text);
    const Result r = run("init " + q(m) + " -o " + q(out));
    EXPECT_EQ(r.status, 2) << text << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(part)) << text;
    EXPECT_THAT(r.err, HasSubstr("error")) << text;
    EXPECT_EQ(r.out, "") << text;
    EXPECT_EQ(entries(work_), std::vector<std::string>{"manifest.json"}) << text;  // no output, no temporary
  }
}

TEST_F(Cli, HugeNumberInTheManifestExits2) {
  // 1e400 overflows a double: a bad manifest (2), not an internal error (4).
  const fs::path m = manifest(R"({"seed": 1, "tensors": [{"name": "w", "shape": [4], "init": {"fn": "normal", "std": 1e400}}]})");
  const Result r = run("init " + q(m) + " -o " + q(work_ / "model.safetensors"));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("1e400"));
  EXPECT_THAT(r.err, Not(HasSubstr("internal error")));
  EXPECT_EQ(entries(work_), std::vector<std::string>{"manifest.json"});
}

TEST_F(Cli, MissingManifestExits3) {
  const fs::path missing = work_ / "no-such-manifest.json";
  const Result r = run("init " + q(missing) + " -o " + q(work_ / "model.safetensors"));
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no-such-manifest.json"));
  EXPECT_TRUE(entries(work_).empty());
}

TEST_F(Cli, MissingOutputDirectoryExits3) {
  const fs::path m = manifest(kSmall);
  const fs::path missing = work_ / "no" / "such" / "dir";
  const Result r = run("init " + q(m) + " -o " + q(missing / "model.safetensors"));
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr(missing.string()));
  EXPECT_EQ(entries(work_), std::vector<std::string>{"manifest.json"});
}

TEST_F(Cli, UnwritableOutputDirectoryExits3) {
  const fs::path m = manifest(kSmall);
  const fs::path locked = work_ / "locked";
  fs::create_directory(locked);
  ASSERT_EQ(::chmod(locked.c_str(), 0555), 0);
  std::string prefix;  // how to run the command so that the permissions apply
  if (::access(locked.c_str(), W_OK) == 0) {
    // Root ignores the permissions; run as nobody where that is possible.
    const std::string as_nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    const bool possible = ::geteuid() == 0 && ::access("/usr/bin/setpriv", X_OK) == 0 &&
                          ::chmod(root_.c_str(), 0755) == 0 && ::chmod(work_.c_str(), 0755) == 0 &&
                          shell(as_nobody + quote(kCli) + " --version").status == 0 &&
                          shell(as_nobody + "test -w " + q(locked)).status == 1 &&
                          shell(as_nobody + "test -r " + q(m)).status == 0;
    if (!possible) {
      ::chmod(locked.c_str(), 0755);
      GTEST_SKIP() << "permissions are not enforced for this user (root?) and setpriv cannot drop them";
    }
    prefix = as_nobody;
  }
  const Result r = shell(prefix + quote(kCli) + " init " + q(m) + " -o " + q(locked / "model.safetensors"));
  ::chmod(locked.c_str(), 0755);
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr(locked.string()));
  EXPECT_THAT(r.err, HasSubstr("Permission denied"));
  EXPECT_TRUE(entries(locked).empty());
}

TEST_F(Cli, OutputThatIsADirectoryExits3) {
  const fs::path m = manifest(kSmall);
  fs::create_directory(work_ / "out");
  const Result r = run("init --force " + q(m) + " -o " + q(work_ / "out"));
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_TRUE(fs::is_directory(work_ / "out"));
  EXPECT_TRUE(entries(work_ / "out").empty());
}

TEST_F(Cli, HelpAndVersion) {
  const Result help = run("--help");
  EXPECT_EQ(help.status, 0) << help.err;
  EXPECT_THAT(help.out + help.err, HasSubstr("init"));
  EXPECT_THAT(help.out + help.err, HasSubstr("verify"));
  const Result init_help = run("init --help");
  EXPECT_EQ(init_help.status, 0);
  EXPECT_THAT(init_help.out + init_help.err, HasSubstr("--force"));
  const Result version = run("--version");
  EXPECT_EQ(version.status, 0);
  EXPECT_THAT(version.out + version.err, HasSubstr("shardinit-stream-v1"));
}

TEST_F(Cli, UsageErrorsExit2) {
  const fs::path m = manifest(kSmall);
  const Result none = run("");
  EXPECT_EQ(none.status, 2) << none.err;
  EXPECT_THAT(none.out + none.err, HasSubstr("subcommand"));
  EXPECT_EQ(run("frobnicate").status, 2);
  EXPECT_EQ(run("init " + q(m)).status, 2);  // no -o
  EXPECT_EQ(run("init").status, 2);
  EXPECT_EQ(run("verify " + q(m)).status, 2);  // no file
  EXPECT_EQ(run("init " + q(m) + " -o " + q(work_ / "x.safetensors") + " --bogus").status, 2);
  EXPECT_EQ(entries(work_), std::vector<std::string>{"manifest.json"});
}

TEST_F(Cli, FileSizeLimitExits3AndLeavesNothing) {
  const fs::path m = manifest(kFourMegabytes);
  const fs::path out = work_ / "model.safetensors";
  const Result r = shell("ulimit -f 100; exec " + quote(kCli) + " init " + q(m) + " -o " + q(out));
  EXPECT_EQ(r.status, 3) << r.err;  // not killed by SIGXFSZ (153), not an internal error
  EXPECT_THAT(r.err, HasSubstr("File too large"));
  EXPECT_THAT(r.err, HasSubstr(out.string()));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(entries(work_), std::vector<std::string>{"manifest.json"});  // no temporary either
}

// A rank holds open only the files its pieces in flight touch: a Hugging Face directory of 400
// shards is written and verified under a limit of 48 open files (before, every shard of the rank's
// range was opened at once, and a job over the process's limit failed with "Too many open files").
TEST_F(Cli, ManyShardsNeedFewOpenFiles) {
  std::string text = R"({"seed": 3, "tensors": [)";
  for (int i = 0; i < 400; ++i) {
    text += std::string(i == 0 ? "" : ",") + R"({"name": "t)" + std::to_string(i) + R"(", "shape": [16], "init": {"fn": "normal", "std": 0.02}})";
  }
  const fs::path m = manifest(text + "]}");
  const fs::path dir = work_ / "hf";
  const std::string limit = "ulimit -n 48; exec " + quote(kCli);
  const Result init = shell(limit + " init -q " + q(m) + " -o " + q(dir) + " --format hf --max-shard-size 64B");
  ASSERT_EQ(init.status, 0) << init.err;
  EXPECT_TRUE(fs::exists(dir / "model-00400-of-00400.safetensors"));
  const Result verify = shell(limit + " verify -q " + q(m) + " " + q(dir));
  EXPECT_EQ(verify.status, 0) << verify.err;
  const Result by_size = shell(limit + " verify -q " + q(m) + " " + q(dir) + " --max-shard-size 64B --threads 3");
  EXPECT_EQ(by_size.status, 0) << by_size.err;
}

TEST_F(Cli, InitTwiceGivesIdenticalFiles) {
  const fs::path m = manifest(kSmall);
  ASSERT_EQ(run("init -q " + q(m) + " -o " + q(work_ / "a.safetensors")).status, 0);
  ASSERT_EQ(run("init -q " + q(m) + " -o " + q(work_ / "b.safetensors")).status, 0);
  const Result cmp = shell("cmp " + q(work_ / "a.safetensors") + " " + q(work_ / "b.safetensors"));
  EXPECT_EQ(cmp.status, 0) << cmp.out;
  EXPECT_EQ(read_all(work_ / "a.safetensors"), read_all(work_ / "b.safetensors"));
}

TEST_F(Cli, ExampleManifest) {
  // The issue's example (about 160 MB, mostly the bf16 embedding) verifies after init.
  const fs::path m = fs::path(SHARDINIT_EXAMPLES_DIR) / "manifests" / "gpt2-mlp.json";
  const fs::path out = work_ / "gpt2-mlp.safetensors";
  const Result init = run("init " + q(m) + " -o " + q(out));
  ASSERT_EQ(init.status, 0) << init.err;
  EXPECT_THAT(init.err, HasSubstr("4 tensors"));
  const Result verify = run("verify -q " + q(m) + " " + q(out));
  EXPECT_EQ(verify.status, 0) << verify.err;
  SafetensorsReader reader(out);
  EXPECT_EQ(reader.find("wte")->dtype, DType::bf16);
  EXPECT_EQ(reader.find("wte")->end - reader.find("wte")->begin, 50257u * 768u * 2u);
}

// Starts `init` on a 192 MB manifest, sends `signal_number` once its temporary file exists (and, if
// `wait_for_data`, holds data), and returns what is left in the directory; nullopt (with `why`) when
// init finished before the signal could be sent.
struct Interrupted {
  int status = 0;
  std::vector<std::string> entries;
};

TEST_F(Cli, SignalHelperSelfCheck) {
  // Without a signal, the same command completes and leaves exactly the output: the
  // directory checks below are meaningful.
  const fs::path m = manifest(R"({"seed": 1, "tensors": [{"name": "big", "shape": [4, 1024], "init": {"fn": "trunc_normal"}}]})");
  ASSERT_EQ(run("init -q " + q(m) + " -o " + q(work_ / "model.safetensors")).status, 0);
  EXPECT_EQ(entries(work_), (std::vector<std::string>{"manifest.json", "model.safetensors"}));
}

class CliSignal : public Cli {
 protected:
  std::optional<Interrupted> interrupt_init(int signal_number, bool wait_for_data, std::string& why) {
    // 128M f32 elements (512 MB): long enough to catch the temporary file on disk (the callers retry
    // the rare run that ends first, and fail if none could be interrupted).
    const fs::path m = manifest(
        R"({"seed": 1, "tensors": [{"name": "big", "shape": [128, 1024, 1024], "init": {"fn": "trunc_normal"}}]})");
    const fs::path out = work_ / "model.safetensors";
    for (const auto& name : entries(work_)) {  // leftovers of an earlier attempt
      if (name != "manifest.json") fs::remove(work_ / name);
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      why = "fork failed";
      return std::nullopt;
    }
    if (pid == 0) {
      if (std::freopen("/dev/null", "w", stderr) == nullptr) ::_exit(126);
      for (int s = 1; s < NSIG; ++s) std::signal(s, SIG_DFL);  // whatever the test runner ignores or blocks
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      const rlimit no_core{0, 0};  // the fault signals would dump core into the test's directory
      setrlimit(RLIMIT_CORE, &no_core);
      ::execl(kCli.c_str(), kCli.c_str(), "init", "-q", m.c_str(), "-o", out.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    bool seen = false;
    bool finished = false;
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!seen && !finished && std::chrono::steady_clock::now() < deadline) {
      for (const auto& name : entries(work_)) {
        if (name.find(".tmp") == std::string::npos) continue;
        std::error_code ec;
        seen = seen || !wait_for_data || (fs::file_size(work_ / name, ec) > 0 && !ec);
      }
      if (!seen) finished = ::waitpid(pid, &status, WNOHANG) == pid;
    }
    if (finished) {
      why = "init finished before its temporary file was seen";
      return std::nullopt;
    }
    ::kill(pid, seen ? signal_number : SIGKILL);
    ::waitpid(pid, &status, 0);
    if (!seen) {
      why = "no temporary file appeared";
      return std::nullopt;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      why = "init finished before the signal arrived";
      return std::nullopt;
    }
    return Interrupted{status, entries(work_)};
  }
};

// Every signal whose default action ends the process and that can be caught (signal(7)): the
// temporary is removed and the process still ends by that signal (exit status as the default action
// gives it). SIGKILL and SIGSTOP cannot be caught; SIGXFSZ is ignored by the CLI (a file-size limit
// is a write error).
TEST_F(CliSignal, EveryCatchableTerminatingSignalLeavesNothing) {
  std::vector<int> signals{SIGHUP, SIGINT,  SIGQUIT, SIGILL,  SIGTRAP,   SIGABRT, SIGBUS, SIGFPE,
                           SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM,   SIGTERM, SIGSTKFLT, SIGXCPU,
                           SIGVTALRM, SIGPROF, SIGIO, SIGPWR,  SIGSYS};
  for (const int s : {SIGRTMIN, SIGRTMIN + 7, SIGRTMAX}) signals.push_back(s);
  for (const int signal_number : signals) {
    std::string why;
    std::optional<Interrupted> r;
    for (int attempt = 0; attempt < 5 && !r; ++attempt) r = interrupt_init(signal_number, /*wait_for_data=*/true, why);
    if (!r) {
      ADD_FAILURE() << strsignal(signal_number) << ": no run could be interrupted in 5 attempts: " << why;
      continue;
    }
    const bool by_the_signal = WIFSIGNALED(r->status) && WTERMSIG(r->status) == signal_number;
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer's own handlers for SIGSEGV, SIGBUS and SIGFPE, which ours hands the signal on
    // to, report the "deadly signal" and exit with status 1 instead.
    const bool sanitizer_exit = WIFEXITED(r->status) && WEXITSTATUS(r->status) != 0 &&
                                (signal_number == SIGSEGV || signal_number == SIGBUS || signal_number == SIGFPE);
#else
    const bool sanitizer_exit = false;
#endif
    EXPECT_TRUE(by_the_signal || sanitizer_exit) << strsignal(signal_number) << ": status " << r->status;
    EXPECT_EQ(r->entries, std::vector<std::string>{"manifest.json"}) << strsignal(signal_number);
  }
}

TEST_F(CliSignal, SigtermAsSoonAsTheTemporaryAppearsLeavesNothing) {
  // The temporary file must be covered by the signal handler from the moment it exists. The race
  // window is short, so try several times; a correct writer never leaves the file.
  int interrupted = 0;
  std::string why;
  for (int attempt = 0; attempt < 30; ++attempt) {
    const auto r = interrupt_init(SIGTERM, /*wait_for_data=*/false, why);
    if (!r) continue;
    ++interrupted;
    EXPECT_EQ(r->entries, std::vector<std::string>{"manifest.json"}) << "attempt " << attempt;
    if (r->entries != std::vector<std::string>{"manifest.json"}) break;
  }
  EXPECT_GT(interrupted, 0) << "no run could be interrupted: " << why;
}

}  // namespace
}  // namespace shardinit

// ---- inspect ----------------------------------------------------------------------------------------

namespace shardinit {
namespace {

TEST_F(Cli, InspectListsTensorsInitializersAndMoments) {
  const fs::path m = manifest(kSmall);
  const fs::path out = work_ / "model.safetensors";
  ASSERT_EQ(run("init " + q(m) + " -o " + q(out) + " -q").status, 0);
  const Result r = run("inspect " + q(out));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("4 tensors, seed 42"));
  EXPECT_THAT(r.out, HasSubstr("fc1.weight  f32 [64, 32]"));
  EXPECT_THAT(r.out, HasSubstr("kaiming_uniform(a=2.23606797749979, mode=fan_in, nonlinearity=leaky_relu), fan_in 32"));
  EXPECT_THAT(r.out, HasSubstr("wte  bf16 [50, 32]"));
  EXPECT_THAT(r.out, HasSubstr("normal(mean=0, std=0.02)"));
  // ones: exact moments, and the expected ones beside them.
  EXPECT_THAT(r.out, HasSubstr("mean 1 (expected 1)  std 0 (expected 0)  min 1  max 1  (32 elements)"));
}

// The reassembled view of per-rank files gives the same tensors and the same statistics as the one
// global file (replicated tensors counted once).
TEST_F(Cli, InspectOfRankFilesEqualsTheGlobalFile) {
  const fs::path m = manifest(R"({"seed": 5, "mesh": [2, 2], "tensors": [
    {"name": "w", "shape": [10, 7], "init": {"fn": "normal", "std": 0.5}, "layout": {"shard": {"0": [0], "1": [1]}}},
    {"name": "r", "shape": [9], "dtype": "bf16", "init": {"fn": "uniform", "a": -1, "b": 1}},
    {"name": "c", "shape": [5, 4], "dtype": "f16", "init": {"fn": "trunc_normal", "std": 0.2}, "layout": {"shard": {"1": [0, 1]}}}]})");
  const fs::path out = work_ / "global.safetensors";
  ASSERT_EQ(run("init " + q(m) + " -o " + q(out) + " -q").status, 0);
  for (int rank = 0; rank < 4; ++rank) {
    ASSERT_EQ(run("init " + q(m) + " --per-rank " + q(work_ / "ranks") + " --rank " + std::to_string(rank) + " --world 4 -q").status, 0);
  }
  const Result whole = run("inspect " + q(out) + " --hist --bins 7");
  const Result ranks = run("inspect " + q(work_ / "ranks") + " --hist --bins 7");
  ASSERT_EQ(whole.status, 0) << whole.err;
  ASSERT_EQ(ranks.status, 0) << ranks.err;
  EXPECT_THAT(ranks.out, HasSubstr("4 of 4 rank files, reassembled, 3 tensors"));
  const auto after_first_line = [](const std::string& s) { return s.substr(s.find('\n') + 1); };
  EXPECT_EQ(after_first_line(ranks.out), after_first_line(whole.out));
  EXPECT_THAT(whole.out, Not(HasSubstr("INCOMPLETE")));
  // With one rank file missing the set is refused, naming what is missing; --partial shows what is there.
  fs::remove(work_ / "ranks" / "rank-00003-of-00004.safetensors");
  const Result incomplete = run("inspect " + q(work_ / "ranks"));
  EXPECT_EQ(incomplete.status, 1) << incomplete.err;
  EXPECT_THAT(incomplete.err, HasSubstr("missing rank-00003-of-00004.safetensors (1 of 4 ranks)"));
  EXPECT_TRUE(incomplete.out.empty()) << incomplete.out;
  const Result partial = run("inspect " + q(work_ / "ranks") + " --partial");
  EXPECT_EQ(partial.status, 0) << partial.err;
  EXPECT_THAT(partial.out, HasSubstr("3 of 4 rank files"));
  EXPECT_THAT(partial.out, HasSubstr("MISSING rank-00003-of-00004.safetensors (1 of 4 ranks)"));
  EXPECT_THAT(partial.out, HasSubstr("INCOMPLETE"));
}

TEST_F(Cli, InspectHistogramCountsEveryValue) {
  const fs::path m = manifest(R"({"seed": 3, "tensors": [{"name": "n", "shape": [1000], "init": {"fn": "normal"}}]})");
  const fs::path out = work_ / "n.safetensors";
  ASSERT_EQ(run("init " + q(m) + " -o " + q(out) + " -q").status, 0);
  const Result r = run("inspect " + q(out) + " --hist --bins 9");
  ASSERT_EQ(r.status, 0) << r.err;
  // Nine rows "    [lo, hi) bar observed expected"; the observed counts add up to the 1000 elements.
  long long total = 0;
  int rows = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("    [", 0) != 0) continue;
    ++rows;
    // The last two fields are the observed and the expected counts.
    std::istringstream fields(line);
    std::vector<std::string> words;
    for (std::string w; fields >> w;) words.push_back(w);
    ASSERT_GE(words.size(), 3u) << line;
    total += std::stoll(words[words.size() - 2]);
  }
  EXPECT_EQ(rows, 9);
  EXPECT_EQ(total, 1000);
}

TEST_F(Cli, InspectErrors) {
  const fs::path m = manifest(kSmall);
  const fs::path out = work_ / "model.safetensors";
  ASSERT_EQ(run("init " + q(m) + " -o " + q(out) + " -q").status, 0);
  Result r = run("inspect " + q(work_ / "missing.safetensors"));
  EXPECT_EQ(r.status, 3);
  EXPECT_THAT(r.err, HasSubstr("missing.safetensors"));
  r = run("inspect " + q(m));
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("not a valid safetensors file"));
  r = run("inspect " + q(out) + " --tensor nope");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--tensor nope"));
  EXPECT_THAT(r.err, HasSubstr("fc1.weight"));
  r = run("inspect " + q(out) + " --bins 0");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--bins 0"));
  fs::create_directory(work_ / "empty");
  r = run("inspect " + q(work_ / "empty"));
  EXPECT_EQ(r.status, 3);
  EXPECT_THAT(r.err, HasSubstr("no rank files"));
  // A directory holding model.safetensors is a Hugging Face directory of one file.
  r = run("inspect " + q(work_));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Hugging Face directory of 1 file"));
}

// A per-rank directory is checked as the set it must be; each way it can be wrong is named.
class CliRankSet : public Cli {
 protected:
  // Writes rank R of W of `manifest_text` into `directory` (one rank alone, as torchrun would).
  void write_rank(const std::string& manifest_text, const fs::path& directory, int rank, int world) {
    const fs::path m = manifest(manifest_text, "m" + std::to_string(counter_++) + ".json");
    ASSERT_EQ(run("init -q " + q(m) + " --per-rank " + q(directory) + " --rank " + std::to_string(rank) + " --world " +
                  std::to_string(world)).status, 0);
  }
  Result inspect(const fs::path& directory, const std::string& extra = "") { return run("inspect " + q(directory) + extra); }
  void expect_refused(const fs::path& directory, const std::string& part) {
    const Result r = inspect(directory);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(part));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  static constexpr const char* kRows = R"({"seed": 4, "tensors": [
      {"name": "w", "shape": [8, 6], "init": {"fn": "normal"}, "layout": {"shard": {"0": [0]}}},
      {"name": "r", "shape": [3], "init": {"fn": "uniform"}}]})";
  int counter_ = 0;
};

TEST_F(CliRankSet, EveryWorldSizeInitAcceptsIsAccepted) {
  // 100000 ranks: six-digit names; one file present, 99999 missing (named a few, then counted).
  const fs::path d = work_ / "big";
  write_rank(kRows, d, 99999, 100000);
  ASSERT_EQ(entries(d), std::vector<std::string>{"rank-99999-of-100000.safetensors"});
  expect_refused(d, "missing rank-00000-of-100000.safetensors, rank-00001-of-100000.safetensors");
  expect_refused(d, "and 99991 more (99999 of 100000 ranks)");
  const Result partial = inspect(d, " --partial");
  EXPECT_EQ(partial.status, 0) << partial.err;
  EXPECT_THAT(partial.out, HasSubstr("1 of 100000 rank files, reassembled"));
  EXPECT_THAT(partial.out, HasSubstr("INCOMPLETE"));
}

TEST_F(CliRankSet, FilesOfDifferentRunsAreRefused) {
  const fs::path worlds = work_ / "worlds";
  write_rank(kRows, worlds, 0, 2);
  write_rank(kRows, worlds, 1, 4);
  expect_refused(worlds, "rank files of different runs: world sizes 2 (rank-00000-of-00002.safetensors), 4 (rank-00001-of-00004.safetensors)");

  const fs::path seeds = work_ / "seeds";
  write_rank(kRows, seeds, 0, 2);
  std::string other = kRows;
  other.replace(other.find("\"seed\": 4"), 9, "\"seed\": 5");
  write_rank(other, seeds, 1, 2);
  expect_refused(seeds, "\"rank-00001-of-00002.safetensors\" is from another manifest than \"rank-00000-of-00002.safetensors\"");

  // Same manifest digest (layouts never change the values), other layout: boxes that overlap.
  const fs::path layouts = work_ / "layouts";
  write_rank(kRows, layouts, 0, 2);
  std::string columns = kRows;
  columns.replace(columns.find("\"0\": [0]"), 8, "\"1\": [0]");
  write_rank(columns, layouts, 1, 2);
  expect_refused(layouts, "tensor \"w\": the box {start [0, 0], extent [4, 6]} of rank-00000-of-00002.safetensors overlaps the "
                          "box {start [0, 3], extent [8, 3]} of rank-00001-of-00002.safetensors");
}

TEST_F(CliRankSet, RenamedAndMisnamedFilesAreRefused) {
  const fs::path renamed = work_ / "renamed";
  write_rank(kRows, renamed, 0, 2);
  fs::copy_file(renamed / "rank-00000-of-00002.safetensors", renamed / "rank-00001-of-00002.safetensors");
  expect_refused(renamed, "\"rank-00001-of-00002.safetensors\" records rank 0 of 2: it was renamed, or written by another run");

  const fs::path misnamed = work_ / "misnamed";
  write_rank(kRows, misnamed, 0, 2);
  fs::rename(misnamed / "rank-00000-of-00002.safetensors", misnamed / "rank-000000-of-00002.safetensors");
  expect_refused(misnamed, "\"rank-000000-of-00002.safetensors\" is not a rank file name shardinit writes (expected "
                           "\"rank-00000-of-00002.safetensors\")");

  const fs::path outside = work_ / "outside";
  write_rank(kRows, outside, 2, 2 + 1);
  fs::rename(outside / "rank-00002-of-00003.safetensors", outside / "rank-00003-of-00003.safetensors");
  expect_refused(outside, "names rank 3 of a world of 3");
}

// Files whose boxes are disjoint but leave part of a tensor out, and replicas that differ: each named.
TEST_F(CliRankSet, GapsAndDifferingReplicasAreRefused) {
  const auto edit = [](const fs::path& file, const std::vector<std::pair<std::string, std::string>>& replacements, std::size_t cut) {
    std::string bytes = test::read_all(file);
    for (const auto& [from, to] : replacements) {
      ASSERT_EQ(from.size(), to.size());
      const std::size_t at = bytes.find(from);
      ASSERT_NE(at, std::string::npos) << from;
      ASSERT_EQ(bytes.find(from, at + 1), std::string::npos) << from;
      bytes.replace(at, from.size(), to);
    }
    test::write_all(file, bytes.substr(0, bytes.size() - cut));
  };
  // Rank 1's box of w shrunk from 4 rows to 3 (its recorded box, its stored shape and its data alike):
  // every file is consistent and no box overlaps another, but row 7 of w is in none.
  const fs::path gap = work_ / "gap";
  for (int r = 0; r < 2; ++r) write_rank(kRows, gap, r, 2);
  edit(gap / "rank-00001-of-00002.safetensors",
       {{R"(\"extent\":[4,6])", R"(\"extent\":[3,6])"},
        {R"("w":{"data_offsets":[12,108],"dtype":"F32","shape":[4,6]})", R"("w":{"data_offsets":[12, 84],"dtype":"F32","shape":[3,6]})"}},
       24);
  expect_refused(gap, "tensor \"w\": the 2 rank files hold 42 of its 48 elements: their boxes do not cover it");

  // The replicated r (the first 12 bytes of data in each file) altered in rank 1's copy.
  const fs::path replicas = work_ / "replicas";
  for (int r = 0; r < 2; ++r) write_rank(kRows, replicas, r, 2);
  const fs::path one = replicas / "rank-00001-of-00002.safetensors";
  std::string bytes = test::read_all(one);
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = header << 8 | static_cast<unsigned char>(bytes[i]);
  bytes[8 + header + 2] = static_cast<char>(bytes[8 + header + 2] ^ 0x5a);
  test::write_all(one, bytes);
  expect_refused(replicas, "tensor \"r\": the copy of box {start [0], extent [3]} in \"rank-00001-of-00002.safetensors\" differs from "
                           "the one in \"rank-00000-of-00002.safetensors\" at byte 2 of the box: replicas must be identical");
}

TEST_F(CliRankSet, ACompleteSetIsAcceptedWithReplicasCountedOnce) {
  const fs::path d = work_ / "ok";
  for (int r = 0; r < 3; ++r) write_rank(kRows, d, r, 3);
  const Result r = inspect(d);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("3 of 3 rank files, reassembled, 2 tensors"));
  EXPECT_THAT(r.out, Not(HasSubstr("INCOMPLETE")));
  EXPECT_THAT(r.out, HasSubstr("(3 elements)"));  // the replicated r: once, not three times
  EXPECT_THAT(r.out, HasSubstr("(48 elements)"));
}

}  // namespace
}  // namespace shardinit
