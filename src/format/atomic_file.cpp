#include "format/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

#include "format/leftovers.hpp"
#include "format/reserve_blocks.hpp"
#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit::detail {

namespace {

// ---- What may be replaced -------------------------------------------------------------------

std::filesystem::path directory_of(const std::filesystem::path& target) {
  return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
}

}  // namespace

void remove_all_temporaries() noexcept { remove_all_leftovers(); }

void check_output_directory(const std::filesystem::path& directory, const std::string& shown) {
  struct stat dir {};
  if (::stat(directory.c_str(), &dir) != 0) {
    throw Error(ErrorKind::io, "cannot write " + shown + ": directory " + printable(directory.string()) +
                                   (errno == ENOENT ? std::string(" does not exist") : ": " + std::string(std::strerror(errno))));
  }
  if (!S_ISDIR(dir.st_mode)) {
    throw Error(ErrorKind::io, "cannot write " + shown + ": " + printable(directory.string()) + " is " +
                                   std::string(file_type_name(dir.st_mode)) + ", not a directory");
  }
}

void check_replaceable(const std::filesystem::path& target, const OutputPolicy& policy) {
  const std::string shown = printable(target.string());
  check_output_directory(directory_of(target), shown);
  struct stat st {};
  if (::lstat(target.c_str(), &st) != 0) {
    if (errno == ENOENT) return;  // nothing there: nothing to protect
    throw Error(ErrorKind::io, "cannot write " + shown + ": " + std::strerror(errno));
  }
  // The inputs first: "it is the manifest" says more than "it exists".
  const FileIdentity identity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
  for (const ProtectedInput& input : policy.inputs) {
    if (input.identity == identity) {
      throw Error(ErrorKind::invalid_argument, "refusing to write " + shown + ": it is " + input.description +
                                                   ", an input of this run (choose another output path)");
    }
  }
  if (S_ISDIR(st.st_mode)) throw Error(ErrorKind::io, "cannot write " + shown + ": it is a directory");
  if (!S_ISREG(st.st_mode)) {
    throw Error(ErrorKind::io, "refusing to replace " + shown + ": it is " + std::string(file_type_name(st.st_mode)) +
                                   ", and shardinit replaces only regular files, even with --force");
  }
  if (!policy.overwrite) throw Error(ErrorKind::io, "refusing to replace existing file " + shown + " (use --force)");
}

void check_free_space(const std::filesystem::path& directory, std::uint64_t bytes, const std::string& what) {
  struct statvfs fs {};
  if (::statvfs(directory.c_str(), &fs) != 0) return;  // cannot tell: the writes will say
  const std::uint64_t block = fs.f_frsize > 0 ? fs.f_frsize : 1;
  const std::uint64_t blocks_needed = bytes / block + (bytes % block != 0 ? 1 : 0);  // in blocks: no overflow
  if (fs.f_bavail < blocks_needed) {
    const std::uint64_t available = static_cast<std::uint64_t>(fs.f_bavail) * block;  // < bytes: fits
    throw Error(ErrorKind::io, "cannot write " + what + ": it needs " + std::to_string(bytes) + " bytes, but " +
                                   printable(directory.string()) + " has " + std::to_string(available) +
                                   " bytes free (no space left for it; nothing was written)");
  }
}

AtomicFile::AtomicFile(std::filesystem::path target, const OutputPolicy& policy, std::uint64_t size)
    : target_(std::move(target)), policy_(policy) {
  const std::filesystem::path directory = directory_of(target_);
  check_replaceable(target_, policy_);
  check_free_space(directory, size, printable(target_.string()));
  // Hidden, beside the target (same filesystem, so the final rename is atomic). The name is registered
  // for removal before the file exists, so that no signal, and no SIGKILL once the guardian has the
  // name, can leave it: made like mkstemp's, opened with O_EXCL.
  static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device random;
  for (int attempt = 0; fd_ < 0; ++attempt) {
    std::string name(1, '.');
    name += target_.filename().string();
    name += ".tmp-";
    for (int i = 0; i < 6; ++i) name += kLetters[random() % (sizeof kLetters - 1)];
    const std::string path = (directory / name).string();
    const LeftoverSignalsBlocked blocked;  // a signal now waits until the file is registered or gone
    slot_ = register_leftover(path, LeftoverKind::file);
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ >= 0) {
      temporary_ = path;
      break;
    }
    const int error = errno;
    unregister_leftover(slot_);
    slot_ = -1;
    if (error != EEXIST || attempt >= 100) fail("cannot create a temporary file in " + printable(directory.string()), error);
  }
  // A constructor that throws runs no destructor: the temporary goes now, not whenever the guardian
  // process gets to it after this one exits.
  try {
    if (const int error = reserve_blocks(fd_, size); error != 0) {
      fail("cannot reserve " + std::to_string(size) + " bytes for " + printable(target_.string()), error);
    }
  } catch (...) {
    discard();
    throw;
  }
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  if (!temporary_.empty()) ::unlink(temporary_.c_str());
  temporary_.clear();
  unregister_leftover(std::exchange(slot_, -1));
}

void AtomicFile::fail(const std::string& what, int error_number) {
  throw Error(ErrorKind::io, what + ": " + std::strerror(error_number));
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  const std::byte* data = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write " + printable(target_.string()), errno);
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::flush() {
  if (::fsync(fd_) != 0) fail("cannot flush " + printable(target_.string()), errno);
}

void AtomicFile::commit() {
  prepare_commit();
  finish_commit();
}

void AtomicFile::prepare_commit() {
  if (fd_ < 0) return;  // prepared already
  const std::string shown = printable(target_.string());
  if (::fsync(fd_) != 0) fail("cannot flush " + shown, errno);
  if (::fchmod(fd_, 0644) != 0) fail("cannot set permissions of " + shown, errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("cannot close " + shown, errno);
  // Whatever appeared at the target while we wrote (a FIFO, a directory, the manifest) is refused as
  // at the start.
  check_replaceable(target_, policy_);
}

void AtomicFile::finish_commit() {
  const std::string shown = printable(target_.string());
  check_replaceable(target_, policy_);
  if (policy_.overwrite) {
    if (::rename(temporary_.c_str(), target_.c_str()) != 0) fail("cannot rename into " + shown, errno);
  } else {
    // link() fails if the target appeared meanwhile: never replace a file we were told not to.
    if (::link(temporary_.c_str(), target_.c_str()) != 0) {
      if (errno == EEXIST) throw Error(ErrorKind::io, "refusing to replace existing file " + shown + " (use --force)");
      if (::rename(temporary_.c_str(), target_.c_str()) != 0) fail("cannot rename into " + shown, errno);
    }
    ::unlink(temporary_.c_str());
  }
  temporary_.clear();
  unregister_leftover(slot_);
  slot_ = -1;
}

}  // namespace shardinit::detail
