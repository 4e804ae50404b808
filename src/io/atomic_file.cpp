#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "shardinit/error.hpp"

namespace shardinit::detail {

namespace {

// Temporary files to remove if a signal ends the process. Plain char arrays and atomics, because a
// signal handler may only call async-signal-safe functions (unlink, signal, raise).
constexpr int kSlots = 16;
std::array<std::array<char, 4096>, kSlots> g_paths{};
std::array<std::atomic<bool>, kSlots> g_in_use{};
std::once_flag g_handlers_installed;

extern "C" void remove_temporaries_and_reraise(int signal_number) {
  for (int i = 0; i < kSlots; ++i) {
    if (g_in_use[i].load()) ::unlink(g_paths[i].data());
  }
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

void install_handlers() {
  std::call_once(g_handlers_installed, [] {
    for (const int s : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      sigaction(s, nullptr, &current);
      if (current.sa_handler == SIG_DFL) std::signal(s, remove_temporaries_and_reraise);
    }
  });
}

// Blocks SIGINT, SIGTERM and SIGHUP for its lifetime, so that no signal can land between creating a
// temporary file and registering it for removal.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t set;
    sigemptyset(&set);
    for (const int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t previous_;
};

int register_temporary(const std::string& path) {
  if (path.size() >= g_paths[0].size()) return -1;
  for (int i = 0; i < kSlots; ++i) {
    bool expected = false;
    if (!g_in_use[i].load() && g_paths[i][0] == '\0') {
      std::memcpy(g_paths[i].data(), path.c_str(), path.size() + 1);
      if (g_in_use[i].compare_exchange_strong(expected, true)) return i;
      g_paths[i][0] = '\0';
    }
  }
  return -1;  // more than kSlots at once: still removed on exceptions, not on signals
}

void unregister_temporary(int slot) {
  if (slot < 0) return;
  g_in_use[slot].store(false);
  g_paths[slot][0] = '\0';
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path target, bool overwrite)
    : target_(std::move(target)), overwrite_(overwrite) {
  const std::filesystem::path directory = target_.has_parent_path() ? target_.parent_path() : ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    throw Error(ErrorKind::io, "cannot write " + target_.string() + ": directory " + directory.string() + " does not exist");
  }
  if (std::filesystem::is_directory(target_, ec)) {
    throw Error(ErrorKind::io, "cannot write " + target_.string() + ": it is a directory");
  }
  if (!overwrite_ && std::filesystem::exists(target_, ec)) {
    throw Error(ErrorKind::io, "refusing to replace existing file " + target_.string() + " (use --force)");
  }
  // Hidden, beside the target (same filesystem, so the final rename is atomic).
  std::string name = ".";
  name += target_.filename().string();
  name += ".tmp-XXXXXX";
  std::string pattern = (directory / name).string();
  install_handlers();
  const SignalsBlocked blocked;  // a signal now waits until the file is registered for removal
  fd_ = ::mkstemp(pattern.data());
  if (fd_ < 0) fail("cannot create a temporary file in " + directory.string(), errno);
  temporary_ = pattern;
  slot_ = register_temporary(pattern);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temporary_.empty()) ::unlink(temporary_.c_str());
  unregister_temporary(slot_);
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
      fail("cannot write " + target_.string(), errno);
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail("cannot flush " + target_.string(), errno);
  if (::fchmod(fd_, 0644) != 0) fail("cannot set permissions of " + target_.string(), errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("cannot close " + target_.string(), errno);
  if (overwrite_) {
    if (::rename(temporary_.c_str(), target_.c_str()) != 0) fail("cannot rename into " + target_.string(), errno);
  } else {
    // link() fails if the target appeared meanwhile: never replace a file we were told not to.
    if (::link(temporary_.c_str(), target_.c_str()) != 0) {
      if (errno == EEXIST) {
        throw Error(ErrorKind::io, "refusing to replace existing file " + target_.string() + " (use --force)");
      }
      if (::rename(temporary_.c_str(), target_.c_str()) != 0) fail("cannot rename into " + target_.string(), errno);
    }
    ::unlink(temporary_.c_str());
  }
  temporary_.clear();
  unregister_temporary(slot_);
  slot_ = -1;
}

}  // namespace shardinit::detail
