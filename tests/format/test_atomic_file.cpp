// AtomicFile: what an output may replace (only a regular file, never an input of the run), the free
// space it needs, and that nothing is left behind when it is refused or abandoned.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "format/atomic_file.hpp"
#include "format/leftovers.hpp"
#include "format/made_directories.hpp"
#include "shardinit/error.hpp"
#include "support/files.hpp"

namespace shardinit::detail {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using test::TempDir;

// Expects AtomicFile(target, policy, size) to throw `kind` with `part` in the message.
void expect_refused(const fs::path& target, const OutputPolicy& policy, std::uint64_t size, ErrorKind kind,
                    const std::string& part) {
  try {
    AtomicFile file(target, policy, size);
    ADD_FAILURE() << target << ": accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_THAT(std::string(e.what()), HasSubstr(part));
  }
}

TEST(AtomicFile, ReplacesOnlyARegularFileEvenWithOverwrite) {
  TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  fs::create_directory(dir / "directory");
  test::write_all(dir / "regular", "precious");
  fs::create_symlink(dir / "regular", dir / "link");
  fs::create_symlink(dir / "nowhere", dir / "dangling");
  for (const bool overwrite : {false, true}) {
    const OutputPolicy policy{overwrite, {}};
    expect_refused(dir / "fifo", policy, 0, ErrorKind::io, "is a FIFO, and shardinit replaces only regular files");
    expect_refused(dir / "directory", policy, 0, ErrorKind::io, "it is a directory");
    expect_refused(dir / "link", policy, 0, ErrorKind::io, "is a symbolic link");
    expect_refused(dir / "dangling", policy, 0, ErrorKind::io, "is a symbolic link");
    expect_refused("/dev/null", policy, 0, ErrorKind::io, "is a character device");
  }
  expect_refused(dir / "regular", OutputPolicy{false, {}}, 0, ErrorKind::io, "(use --force)");
  // Nothing was created or changed: no temporary, the FIFO still a FIFO, the link still a link.
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"dangling", "directory", "fifo", "link", "regular"}));
  EXPECT_TRUE(fs::is_fifo(dir / "fifo"));
  EXPECT_TRUE(fs::is_symlink(dir / "link"));
  EXPECT_EQ(test::read_all(dir / "regular"), "precious");
  // A regular file is replaced with overwrite.
  AtomicFile file(dir / "regular", OutputPolicy{true, {}}, 3);
  const std::string text = "new";
  file.write(std::as_bytes(std::span(text)));
  file.commit();
  EXPECT_EQ(test::read_all(dir / "regular"), "new");
}

TEST(AtomicFile, NeverReplacesAnInputUnderAnyName) {
  TempDir dir;
  test::write_all(dir / "m.json", "{}");
  fs::create_hard_link(dir / "m.json", dir / "hard.json");
  const OutputPolicy policy{true, {ProtectedInput{*identity_of(dir / "m.json"), "the manifest m.json"}}};
  expect_refused(dir / "m.json", policy, 0, ErrorKind::invalid_argument, "it is the manifest m.json, an input of this run");
  expect_refused(dir / "hard.json", policy, 0, ErrorKind::invalid_argument, "it is the manifest m.json");
  expect_refused(dir / "sub" / ".." / "m.json", policy, 0, ErrorKind::io, "does not exist");  // sub/ missing: not even looked at
  fs::create_directory(dir / "sub");
  expect_refused(dir / "sub" / ".." / "m.json", policy, 0, ErrorKind::invalid_argument, "an input of this run");
  EXPECT_EQ(test::read_all(dir / "m.json"), "{}");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"hard.json", "m.json", "sub"}));
}

TEST(AtomicFile, RefusesBeforeWritingWhenTheFilesystemHasNoRoom) {
  TempDir dir;
  expect_refused(dir / "huge.safetensors", OutputPolicy{}, std::uint64_t{1} << 62, ErrorKind::io, "no space left");
  EXPECT_TRUE(dir.entries().empty());
}

// A reservation that fails (here past a file-size limit) throws out of the constructor, which runs no
// destructor: the temporary must be gone when the exception is, not when the guardian process
// removes it after this one exits.
TEST(AtomicFile, AFailedReservationLeavesNoTemporary) {
  TempDir dir;
  {
    const test::ScopedFileSizeLimit limit(64 << 10);
    try {
      AtomicFile file(dir / "out.safetensors", OutputPolicy{}, 1 << 20);
      GTEST_SKIP() << "this filesystem reserves nothing (no fallocate, or tmpfs): no reservation to fail";
    } catch (const Error& e) {
      EXPECT_THAT(std::string(e.what()), HasSubstr("cannot reserve 1048576 bytes for"));
    }
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, ATargetThatChangesWhileWritingIsRefusedAtCommit) {
  TempDir dir;
  AtomicFile file(dir / "out", OutputPolicy{true, {}}, 0);
  ASSERT_EQ(::mkfifo((dir / "out").c_str(), 0600), 0);  // appears meanwhile
  EXPECT_THROW(file.commit(), Error);
  EXPECT_TRUE(fs::is_fifo(dir / "out"));
}

TEST(AtomicFile, RemoveAllTemporariesRemovesEveryLiveOne) {
  TempDir dir;
  AtomicFile a(dir / "a", OutputPolicy{}, 0);
  AtomicFile b(dir / "b", OutputPolicy{}, 0);
  ASSERT_EQ(dir.entries().size(), 2u);
  remove_all_temporaries();  // what a signal handler or the watchdog does before the process ends
  EXPECT_TRUE(dir.entries().empty());
}

// The registry is fixed-size (a signal handler cannot allocate): what it cannot hold is refused when
// registered, before the file or directory exists, never dropped silently.
TEST(Leftovers, WhatTheRegistryCannotHoldIsRefusedUpFront) {
  EXPECT_THROW((void)register_leftover("/" + std::string(4000, 'a'), LeftoverKind::file), Error);
  std::vector<int> handles;
  try {
    for (int i = 0; i < 64; ++i) handles.push_back(register_leftover("/nonexistent/" + std::to_string(i), LeftoverKind::file));
    ADD_FAILURE() << "64 registrations accepted";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("32"));
  }
  EXPECT_LE(handles.size(), 32u);
  for (const int h : handles) unregister_leftover(h);
  // Freed slots are usable again.
  unregister_leftover(register_leftover("/nonexistent/again", LeftoverKind::file));
}

// Directories made for an output are removed when it is abandoned, whatever the spelling of the path
// ("x/y/../z" makes x and x/z, and removes both); kept ones stay.
TEST(MadeDirectories, RemovesWhatItMadeUnlessKept) {
  TempDir dir;
  fs::create_directory(dir / "present");
  { MadeDirectories made(dir / "x" / "y" / ".." / "z"); EXPECT_TRUE(fs::is_directory(dir / "x" / "z")); }
  { MadeDirectories made(dir / "present" / "a" / "b"); EXPECT_TRUE(fs::is_directory(dir / "present" / "a" / "b")); }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"present"});
  EXPECT_TRUE(fs::is_empty(dir / "present"));  // only what it made: "present" stays
  {
    MadeDirectories made(dir / "kept" / "inner");
    made.keep();
  }
  EXPECT_TRUE(fs::is_directory(dir / "kept" / "inner"));
  // Something else than a directory in the way: refused, and what was made before it removed.
  test::write_all(dir / "file", "x");
  EXPECT_THROW(MadeDirectories(dir / "file" / "sub"), Error);
  EXPECT_TRUE(fs::is_regular_file(dir / "file"));
}

}  // namespace
}  // namespace shardinit::detail
