#pragma once
// Reserving a file's blocks before it is written, so that a full disk is an error before a byte is
// generated rather than after. Shared by every writer of a new file (AtomicFile, StagedDirectory).

#include <cstdint>

namespace shardinit::detail {

// Reserves `size` bytes for the open file `fd` (fallocate, FALLOC_FL_KEEP_SIZE: the size stays 0, so
// a final size check still sees short writes). Returns 0, or the errno that says the room is not
// there (ENOSPC, EFBIG, EDQUOT). A filesystem that cannot reserve (EOPNOTSUPP, ...) is not an error.
// Memory filesystems (tmpfs, ramfs) are skipped: there a reservation allocates and zeroes every page,
// a whole extra pass over the file's bytes, and the free-space check (statvfs) already covers them.
[[nodiscard]] int reserve_blocks(int fd, std::uint64_t size);

}  // namespace shardinit::detail
