#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit::detail {

namespace {

// ---- Removal on signals ---------------------------------------------------------------------
// Temporary files to remove if a signal ends the process. Plain char arrays and atomics, because a
// signal handler may only call async-signal-safe functions (unlink, sigaction, raise).
constexpr int kSlots = 16;
std::array<std::array<char, 4096>, kSlots> g_paths{};
std::array<std::atomic<bool>, kSlots> g_in_use{};
std::once_flag g_handlers_installed;

// Signals whose default action ends the process and that a handler can catch (signal(7)): SIGKILL
// and SIGSTOP cannot be caught; SIGCHLD, SIGCONT, SIGURG and SIGWINCH do not end it; SIGTSTP,
// SIGTTIN and SIGTTOU only stop it. The real-time signals SIGRTMIN..SIGRTMAX are added at run time.
constexpr int kAsynchronous[] = {SIGHUP,  SIGINT,  SIGQUIT,   SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,
                                 SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO,   SIGPWR,  SIGSTKFLT};
// ...and those that report a fault of the process itself. Another library (Open MPI prints a
// backtrace on these) may have a handler already: ours runs first and then hands the signal on.
constexpr int kFaults[] = {SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGSYS};

std::array<struct sigaction, NSIG> g_previous{};

extern "C" void remove_temporaries_and_pass_on(int signal_number) {
  remove_all_temporaries();
  // Back to what was there before (the default action, or another library's handler), then the
  // signal again: it is blocked while this handler runs, so it is delivered as soon as we return.
  // A fault re-executes the faulting instruction and arrives there the same way.
  sigaction(signal_number, &g_previous[static_cast<std::size_t>(signal_number)], nullptr);
  raise(signal_number);
}

void install(int signal_number, bool chain_handlers) {
  struct sigaction current {};
  if (sigaction(signal_number, nullptr, &current) != 0) return;
  const bool plain = !(current.sa_flags & SA_SIGINFO);
  // An ignored signal stays ignored (nohup, the CLI's SIGXFSZ). A handler someone installed for an
  // asynchronous signal may mean to go on (Python's SIGINT): leave it alone. Faults end the process
  // whatever their handler does, so the files are removed before handing them on.
  if (plain && current.sa_handler == SIG_IGN) return;
  if (!(plain && current.sa_handler == SIG_DFL) && !chain_handlers) return;
  g_previous[static_cast<std::size_t>(signal_number)] = current;
  struct sigaction ours {};
  ours.sa_handler = remove_temporaries_and_pass_on;
  sigemptyset(&ours.sa_mask);
  ours.sa_flags = SA_RESTART;
  sigaction(signal_number, &ours, nullptr);
}

void install_handlers() {
  std::call_once(g_handlers_installed, [] {
    for (const int s : kAsynchronous) install(s, false);
    for (const int s : kFaults) install(s, true);
    for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) install(s, false);
  });
}

// Blocks every signal a handler is installed for, for its lifetime, so that none can land between
// creating a temporary file and registering it for removal.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t set;
    sigfillset(&set);
    for (const int s : kFaults) sigdelset(&set, s);  // a fault cannot wait
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

// ---- What may be replaced -------------------------------------------------------------------

std::filesystem::path directory_of(const std::filesystem::path& target) {
  return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
}

}  // namespace

void remove_all_temporaries() noexcept {
  for (int i = 0; i < kSlots; ++i) {
    if (g_in_use[i].load()) ::unlink(g_paths[i].data());
  }
}

void check_replaceable(const std::filesystem::path& target, const OutputPolicy& policy) {
  const std::string shown = printable(target.string());
  const std::filesystem::path directory = directory_of(target);

  struct stat dir {};
  if (::stat(directory.c_str(), &dir) != 0) {
    throw Error(ErrorKind::io, "cannot write " + shown + ": directory " + printable(directory.string()) +
                                   (errno == ENOENT ? std::string(" does not exist") : ": " + std::string(std::strerror(errno))));
  }
  if (!S_ISDIR(dir.st_mode)) {
    throw Error(ErrorKind::io, "cannot write " + shown + ": " + printable(directory.string()) + " is " +
                                   std::string(file_type_name(dir.st_mode)) + ", not a directory");
  }
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
  // Hidden, beside the target (same filesystem, so the final rename is atomic).
  std::string name = ".";
  name += target_.filename().string();
  name += ".tmp-XXXXXX";
  std::string pattern = (directory / name).string();
  install_handlers();
  {
    const SignalsBlocked blocked;  // a signal now waits until the file is registered for removal
    fd_ = ::mkstemp(pattern.data());
    if (fd_ < 0) fail("cannot create a temporary file in " + printable(directory.string()), errno);
    temporary_ = pattern;
    slot_ = register_temporary(pattern);
  }
  // Reserve the blocks now, where the filesystem can, so that a full disk is an error before a byte is
  // generated rather than after (the size stays 0: the final size check still sees short writes).
  if (size > 0 && ::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size)) != 0 &&
      (errno == ENOSPC || errno == EFBIG || errno == EDQUOT)) {
    fail("cannot reserve " + std::to_string(size) + " bytes for " + printable(target_.string()), errno);
  }
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
  const std::string shown = printable(target_.string());
  if (::fsync(fd_) != 0) fail("cannot flush " + shown, errno);
  if (::fchmod(fd_, 0644) != 0) fail("cannot set permissions of " + shown, errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("cannot close " + shown, errno);
  // Whatever appeared at the target while we wrote (a FIFO, a directory, the manifest) is refused as
  // at the start.
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
  unregister_temporary(slot_);
  slot_ = -1;
}

}  // namespace shardinit::detail
