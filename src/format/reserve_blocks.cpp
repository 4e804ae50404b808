#include "format/reserve_blocks.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>

namespace shardinit::detail {

bool on_memory_filesystem(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return false;
  return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}

namespace {

bool no_room(int error) { return error == ENOSPC || error == EFBIG || error == EDQUOT; }

int allocate_with_fallocate(int fd, std::uint64_t size) {
  return ::fallocate(fd, 0, 0, static_cast<off_t>(size)) == 0 ? 0 : errno;
}

}  // namespace

int reserve_blocks(int fd, std::uint64_t size) { return reserve_blocks(fd, size, allocate_with_fallocate); }

int reserve_blocks(int fd, std::uint64_t size, AllocateBlocks allocate) {
  if (size == 0 || on_memory_filesystem(fd)) return 0;
  const int allocation_error = allocate(fd, size);
  if (allocation_error == 0) return 0;
  if (no_room(allocation_error)) return allocation_error;
  if (::ftruncate(fd, static_cast<off_t>(size)) == 0) return 0;
  return no_room(errno) ? errno : 0;  // a size it cannot set: the writes extend the file as they go
}

}  // namespace shardinit::detail
