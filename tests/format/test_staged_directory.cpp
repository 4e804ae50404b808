// A staged directory appears complete or not at all, replaces only what it may, and leaves nothing
// when abandoned.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "format/regular_file.hpp"
#include "format/staged_directory.hpp"
#include "shardinit/error.hpp"
#include "support/files.hpp"

namespace shardinit::detail {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

bool ours(const std::string& name) { return name.ends_with(".bin"); }

void fill(const StagedDirectory& d, const std::string& name, const std::string& text) {
  std::ofstream(d.file(name), std::ios::binary) << text;
}

TEST(StagedDirectory, AppearsOnlyOnCommitAndLeavesNothingWhenAbandoned) {
  test::TempDir dir;
  const fs::path target = dir / "out";
  const std::vector<StagedFileSpec> files{{"a.bin", 3}, {"b.bin", 0}};
  {
    StagedDirectory staged(target, OutputPolicy{}, files, ours);
    EXPECT_FALSE(fs::exists(target));
    EXPECT_TRUE(fs::is_directory(staged.staging()));
    EXPECT_TRUE(staged.staging().filename().string().starts_with(".out.tmp-"));
    fill(staged, "a.bin", "abc");
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});  // abandoned: nothing at all
  {
    StagedDirectory staged(target, OutputPolicy{}, files, ours);
    fill(staged, "a.bin", "abc");
    staged.commit(files);
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out"});
  EXPECT_EQ(test::read_all(target / "a.bin"), "abc");
}

// As AtomicFile: a reservation that fails throws out of the constructor, and the staging directory
// (with the files made before it) is gone with the exception.
TEST(StagedDirectory, AFailedReservationLeavesNoStagingDirectory) {
  test::TempDir dir;
  {
    const test::ScopedFileSizeLimit limit(64 << 10);
    try {
      StagedDirectory staged(dir / "out", OutputPolicy{}, {{"a.bin", 3}, {"b.bin", 1 << 20}}, ours);
      GTEST_SKIP() << "this filesystem reserves nothing (no fallocate, or tmpfs): no reservation to fail";
    } catch (const Error& e) {
      EXPECT_THAT(std::string(e.what()), HasSubstr("cannot reserve 1048576 bytes for"));
    }
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(StagedDirectory, ACommitRefusesFilesOfTheWrongSize) {
  test::TempDir dir;
  const std::vector<StagedFileSpec> files{{"a.bin", 3}};
  StagedDirectory staged(dir / "out", OutputPolicy{}, files, ours);
  fill(staged, "a.bin", "ab");
  EXPECT_THAT([&] { staged.commit(files); }, ::testing::ThrowsMessage<Error>(HasSubstr("holds 2 bytes of 3")));
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(StagedDirectory, ReplacesOnlyWhatItMay) {
  test::TempDir dir;
  const fs::path target = dir / "out";
  const std::vector<StagedFileSpec> files{{"a.bin", 1}};
  const auto write = [&](bool overwrite) {
    StagedDirectory staged(target, OutputPolicy{overwrite, {}}, files, ours);
    fill(staged, "a.bin", "x");
    staged.commit(files);
  };
  fs::create_directory(target);
  write(false);  // an empty directory: nothing lost
  EXPECT_EQ(test::read_all(target / "a.bin"), "x");
  EXPECT_THAT([&] { write(false); }, ::testing::ThrowsMessage<Error>(HasSubstr("use --force")));
  std::ofstream(target / "old.bin") << "old";
  write(true);  // our kind of files only: replaced, the old ones gone
  EXPECT_FALSE(fs::exists(target / "old.bin"));
  EXPECT_EQ(test::read_all(target / "a.bin"), "x");
  std::ofstream(target / "notes.txt") << "mine";
  EXPECT_THAT([&] { write(true); }, ::testing::ThrowsMessage<Error>(HasSubstr("notes.txt")));
  EXPECT_EQ(test::read_all(target / "notes.txt"), "mine");
  fs::remove(target / "notes.txt");
  fs::create_directory(target / "sub.bin");
  EXPECT_THAT([&] { write(true); }, ::testing::ThrowsMessage<Error>(HasSubstr("sub.bin")));
  fs::remove(target / "sub.bin");
  // A protected input inside is never removed.
  std::ofstream(target / "input.bin") << "manifest";
  const auto identity = identity_of(target / "input.bin");
  ASSERT_TRUE(identity);
  EXPECT_THAT(
      [&] {
        StagedDirectory staged(target, OutputPolicy{true, {{*identity, "the manifest m.json"}}}, files, ours);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("the manifest m.json")));
  // Not a directory: a file is never replaced by a directory.
  std::ofstream(dir / "file") << "f";
  EXPECT_THAT([&] { StagedDirectory staged(dir / "file", OutputPolicy{true, {}}, files, ours); },
              ::testing::ThrowsMessage<Error>(HasSubstr("refusing to replace")));
  EXPECT_THAT([&] { StagedDirectory staged(dir / "missing" / "out", OutputPolicy{}, files, ours); },
              ::testing::ThrowsMessage<Error>(HasSubstr("does not exist")));
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_FALSE(e.path().filename().string().starts_with(".")) << e.path();
}

}  // namespace
}  // namespace shardinit::detail
