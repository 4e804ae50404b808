#include "format/regular_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <span>
#include <utility>

#include "util/printable.hpp"

namespace shardinit::detail {

std::optional<FileIdentity> identity_of(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

std::string_view file_type_name(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
  }
  return "not a regular file";
}

RegularFile::RegularFile(const std::filesystem::path& path, std::string_view what, ErrorKind not_regular_kind)
    : path_(path), what_(what) {
  const std::string shown = std::string(what) + " " + printable(path.string());
  // O_NONBLOCK: opening a FIFO or a device must not wait for a writer or a carrier; O_NOCTTY: a
  // terminal must not become ours.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd_ < 0) throw Error(ErrorKind::io, "cannot read " + shown + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int error = errno;
    ::close(fd_);
    throw Error(ErrorKind::io, "cannot stat " + shown + ": " + std::strerror(error));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    const std::string_view type = file_type_name(st.st_mode);
    throw NotARegularFile(not_regular_kind, shown + " is " + std::string(type) + ", not a regular file", type);
  }
  // A regular file never blocks; clearing the flag keeps reads plain on every filesystem.
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
  size_ = static_cast<std::uint64_t>(st.st_size);
  identity_ = FileIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

RegularFile::RegularFile(RegularFile&& other) noexcept
    : path_(std::move(other.path_)),
      what_(std::move(other.what_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      identity_(other.identity_) {}

std::string RegularFile::read_all(std::uint64_t limit) const {
  const std::string shown = what_ + " " + printable(path_.string());
  if (size_ > limit) {
    throw Error(ErrorKind::invalid_argument, shown + " is " + std::to_string(size_) + " bytes, more than the limit of " +
                                                 std::to_string(limit));
  }
  std::string text;
  text.resize(static_cast<std::size_t>(size_) + 1);  // one byte more, to notice a file that grew
  std::size_t done = 0;
  for (;;) {
    if (done == text.size()) {
      if (text.size() > limit) {
        throw Error(ErrorKind::invalid_argument, shown + " is larger than the limit of " + std::to_string(limit) + " bytes");
      }
      text.resize(std::min<std::uint64_t>(limit + 1, text.size() * 2 + 4096));
    }
    const ssize_t n = ::pread(fd_, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorKind::io, "cannot read " + shown + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  if (done > limit) {
    throw Error(ErrorKind::invalid_argument, shown + " is larger than the limit of " + std::to_string(limit) + " bytes");
  }
  text.resize(done);
  return text;
}

std::size_t RegularFile::read_at(std::uint64_t offset, std::span<std::byte> out) const {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorKind::io, "cannot read " + printable(path_.string()) + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

}  // namespace shardinit::detail
