// reserve_blocks: the final size set and blocks reserved where that is metadata only, nothing on a
// memory filesystem, a reservation larger than the filesystem is the error that says so, and where
// fallocate is missing the size is still set (ftruncate).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "format/reserve_blocks.hpp"
#include "support/files.hpp"

namespace shardinit::detail {
namespace {

// A new empty file in `directory`, removed with the object.
class ScratchFile {
 public:
  explicit ScratchFile(const std::filesystem::path& directory)
      : path_(directory / ("reserve-blocks-" + std::to_string(::getpid()))) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  ~ScratchFile() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] std::uint64_t allocated_bytes() const {
    struct stat st {};
    ::fstat(fd_, &st);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
  }
  [[nodiscard]] std::uint64_t size() const {
    struct stat st {};
    ::fstat(fd_, &st);
    return static_cast<std::uint64_t>(st.st_size);
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

constexpr std::uint64_t kMiB = 1 << 20;

TEST(ReserveBlocks, MemoryFilesystemIsLeftUnallocated) {
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  const ScratchFile file("/dev/shm");
  ASSERT_GE(file.fd(), 0);
  EXPECT_EQ(reserve_blocks(file.fd(), 8 * kMiB), 0);
  // A reservation on tmpfs would allocate (and zero) 8 MiB of pages now; even the size is left.
  EXPECT_EQ(file.allocated_bytes(), 0u);
  EXPECT_EQ(file.size(), 0u);
}

TEST(ReserveBlocks, DiskFilesystemReservesAndSetsTheSize) {
  // The build tree lives on a disk filesystem in CI; where it cannot reserve, reserve_blocks says 0
  // and nothing is allocated, which this test then cannot tell apart from tmpfs: skip.
  const ScratchFile file(std::filesystem::current_path());
  ASSERT_GE(file.fd(), 0);
  ASSERT_EQ(reserve_blocks(file.fd(), 8 * kMiB), 0);
  if (file.allocated_bytes() == 0) GTEST_SKIP() << "this filesystem does not reserve blocks (tmpfs, or no fallocate)";
  EXPECT_GE(file.allocated_bytes(), 8 * kMiB);
  EXPECT_EQ(file.size(), 8 * kMiB);  // the final size: no write extends the file
}

TEST(ReserveBlocks, MoreThanTheDiskHoldsIsAnError) {
  const ScratchFile file(std::filesystem::current_path());
  ASSERT_GE(file.fd(), 0);
  if (reserve_blocks(file.fd(), kMiB) == 0 && file.allocated_bytes() == 0) GTEST_SKIP() << "this filesystem does not reserve blocks";
  const int error = reserve_blocks(file.fd(), std::uint64_t{1} << 60);  // 1 EiB
  EXPECT_TRUE(error == ENOSPC || error == EFBIG || error == EDQUOT) << "errno " << error;
}

// An allocation that fails as on a filesystem without fallocate (NFS before 4.2, some FUSE ones).
int unsupported(int, std::uint64_t) { return EOPNOTSUPP; }

// Without fallocate the file still gets its final size, sparse, so that no write extends it.
TEST(ReserveBlocks, WithoutFallocateTheSizeIsSetSparse) {
  const ScratchFile file(std::filesystem::current_path());
  ASSERT_GE(file.fd(), 0);
  if (on_memory_filesystem(file.fd())) GTEST_SKIP() << "a memory filesystem is left alone";
  ASSERT_EQ(reserve_blocks(file.fd(), 8 * kMiB, unsupported), 0);
  EXPECT_EQ(file.size(), 8 * kMiB);
  EXPECT_LT(file.allocated_bytes(), 8 * kMiB);  // the size only: nothing written or reserved
}

// Without fallocate, a size past the file-size limit is the error that says so (EFBIG).
TEST(ReserveBlocks, WithoutFallocateASizePastTheLimitIsAnError) {
  const ScratchFile file(std::filesystem::current_path());
  ASSERT_GE(file.fd(), 0);
  if (on_memory_filesystem(file.fd())) GTEST_SKIP() << "a memory filesystem is left alone";
  const test::ScopedFileSizeLimit limit(kMiB);
  EXPECT_EQ(reserve_blocks(file.fd(), 8 * kMiB, unsupported), EFBIG);
  EXPECT_EQ(file.size(), 0u);
}

// An allocation that fails for want of room is the answer: no fallback, no size set.
TEST(ReserveBlocks, AnAllocationWithoutRoomIsTheErrorAndSetsNoSize) {
  const ScratchFile file(std::filesystem::current_path());
  ASSERT_GE(file.fd(), 0);
  if (on_memory_filesystem(file.fd())) GTEST_SKIP() << "a memory filesystem is left alone";
  EXPECT_EQ(reserve_blocks(file.fd(), 8 * kMiB, [](int, std::uint64_t) { return ENOSPC; }), ENOSPC);
  EXPECT_EQ(reserve_blocks(file.fd(), 8 * kMiB, [](int, std::uint64_t) { return EDQUOT; }), EDQUOT);
  EXPECT_EQ(file.size(), 0u);
}

TEST(ReserveBlocks, NothingToReserve) {
  const ScratchFile file(std::filesystem::current_path());
  ASSERT_GE(file.fd(), 0);
  EXPECT_EQ(reserve_blocks(file.fd(), 0), 0);
  EXPECT_EQ(file.allocated_bytes(), 0u);
}

}  // namespace
}  // namespace shardinit::detail
