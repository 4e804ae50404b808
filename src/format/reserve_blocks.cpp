#include "format/reserve_blocks.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include <cerrno>

namespace shardinit::detail {

namespace {

bool on_memory_filesystem(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return false;
  return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}

}  // namespace

int reserve_blocks(int fd, std::uint64_t size) {
  if (size == 0 || on_memory_filesystem(fd)) return 0;
  if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size)) == 0) return 0;
  const int error = errno;
  return error == ENOSPC || error == EFBIG || error == EDQUOT ? error : 0;
}

}  // namespace shardinit::detail
