#include "format/leftovers.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "shardinit/error.hpp"
#include "util/printable.hpp"
#include <mutex>

#include <time.h>

namespace shardinit::detail {

namespace {

// ---- The table: plain arrays and atomics, readable from a signal handler -----------------------
constexpr int kSlots = 32;
constexpr std::size_t kPathBytes = 4000;  // a record (below) must fit one SOCK_SEQPACKET message

struct Slot {
  std::array<char, kPathBytes> path{};
  std::atomic<std::uint32_t> stop{0};  // directories: the length of the outermost one's path
  std::atomic<bool> in_use{false};
  std::atomic<std::uint32_t> order{0};  // registration order: directories go latest first
  LeftoverKind kind = LeftoverKind::file;
};
std::array<Slot, kSlots> g_slots;
std::atomic<std::uint32_t> g_order{0};
std::mutex g_registry;  // registrations and the messages to the guardian, in one order

// What the guardian is told: add or drop one slot.
struct Record {
  char op = 0;  // 'A' add, 'D' drop
  std::uint8_t slot = 0;
  std::uint8_t directory = 0;
  std::uint32_t order = 0;
  std::uint32_t stop = 0;
  char path[kPathBytes];
};

int g_guardian = -1;  // our end of the socket pair; -1 if none (not started, or it could not be)

void remove_file(const char* path) noexcept { ::unlink(path); }

// rmdir of `path`, then of its parents up to the one whose path has `stop` bytes, each only while empty.
// With `patience`, a directory that is not empty yet is tried again for a few seconds: under MPI the
// other ranks of a node, dying at the same moment, are removing their own files from it.
void remove_directories(const char* path, std::uint32_t stop, bool patience) noexcept {
  static char buffer[kPathBytes];
  std::size_t length = std::strlen(path);
  if (length >= kPathBytes) return;
  std::memcpy(buffer, path, length + 1);
  for (;;) {
    for (int attempt = 0; ::rmdir(buffer) != 0 && errno == ENOTEMPTY && patience && attempt < 60; ++attempt) {
      const timespec pause{0, 50'000'000};
      ::nanosleep(&pause, nullptr);
    }
    if (length <= stop) return;
    while (length > 0 && buffer[length - 1] != '/') --length;  // up to the parent
    while (length > 1 && buffer[length - 1] == '/') --length;
    if (length <= 1 || length < stop) return;  // never the root, never above `stop`
    buffer[length] = '\0';
  }
}

constexpr std::uint8_t kStagingDirectory = 2;  // Record::directory of LeftoverKind::staging_directory

// Unlinks each entry of `directory` for which remove(name) says yes. Raw getdents64: no allocation,
// as after fork in a threaded process, and in a signal handler, both require.
template <class Remove>
void unlink_entries_where(const char* directory, const Remove& remove) noexcept {
  const int fd = ::open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  alignas(8) static char entries[16384];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd, entries, sizeof entries);
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      struct Entry {  // struct linux_dirent64
        std::uint64_t inode;
        std::int64_t offset;
        unsigned short length;
        unsigned char type;
        char name[1];
      };
      const auto* entry = reinterpret_cast<const Entry*>(entries + at);
      if (remove(entry->name)) ::unlinkat(fd, entry->name, 0);
      at += entry->length;
    }
  }
  ::close(fd);
}

// Unlinks every entry of the directory `path` (a staging directory: only our files are in it).
void remove_directory_files(const char* path) noexcept {
  unlink_entries_where(path, [](const char* name) { return std::strcmp(name, ".") != 0 && std::strcmp(name, "..") != 0; });
}

// Removes the present entries: files first, then directories, the latest registered first (a child
// before its parent). Async-signal-safe.
void remove_entries(const char* const* paths, const std::uint8_t* directory, const std::uint32_t* order,
                    const std::uint32_t* stop, bool* present, int count, bool patience = false) noexcept {
  for (int i = 0; i < count; ++i) {
    if (present[i] && !directory[i]) {
      remove_file(paths[i]);
      present[i] = false;
    }
  }
  for (;;) {
    int latest = -1;
    for (int i = 0; i < count; ++i) {
      if (present[i] && (latest < 0 || order[i] > order[latest])) latest = i;
    }
    if (latest < 0) return;
    if (directory[latest] == kStagingDirectory) remove_directory_files(paths[latest]);
    remove_directories(paths[latest], stop[latest], patience);
    present[latest] = false;
  }
}

// ---- The guardian: only async-signal-safe calls after fork ---------------------------------------

// Open MPI's MPI-IO (ompio) opens a file across nodes with a lock file beside it, FILE-JOBID-PID.lock
// (its "lockedfile" shared file pointer), removed by MPI_File_close: a killed job leaves it. Removes
// those of `file` (raw getdents64: no allocation, as after fork in a threaded process is required).
void remove_mpi_lock_files(const char* file) noexcept {
  const char* slash = std::strrchr(file, '/');
  if (slash == nullptr) return;
  static char directory[kPathBytes];
  const std::size_t dir_length = static_cast<std::size_t>(slash - file);
  std::memcpy(directory, file, dir_length);
  directory[dir_length] = '\0';
  const char* base = slash + 1;
  const std::size_t base_length = std::strlen(base);
  unlink_entries_where(dir_length == 0 ? "/" : directory, [&](const char* name) {
    const std::size_t length = std::strlen(name);
    return length > base_length + 6 && std::strncmp(name, base, base_length) == 0 && name[base_length] == '-' &&
           std::strcmp(name + length - 5, ".lock") == 0;
  });
}

[[noreturn]] void guard(int socket) {
  // Its own session: the kill of the rank's process group (how mpirun ends a job) does not reach it;
  // the end of its parent does, as the end of the socket.
  ::setsid();
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM}) ::sigaction(s, &ignore, nullptr);
  // Hold nothing of the parent's but the socket, as descriptor 0: no terminal or pipe a caller waits
  // on, no file, no directory.
  if (socket != 0) ::dup2(socket, 0);
  for (int fd = 1; fd < 1024; ++fd) ::close(fd);
  ::chdir("/");
  static char paths[kSlots][kPathBytes];
  static bool present[kSlots];
  static std::uint8_t directory[kSlots];
  static std::uint32_t order[kSlots];
  static std::uint32_t stop[kSlots];
  static Record record;
  for (;;) {
    const ssize_t n = ::recv(0, &record, sizeof record, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the parent is gone, however it ended
    if (record.slot >= kSlots) continue;
    if (record.op == 'A') {
      std::memcpy(paths[record.slot], record.path, kPathBytes);
      paths[record.slot][kPathBytes - 1] = '\0';
      directory[record.slot] = record.directory;
      order[record.slot] = record.order;
      stop[record.slot] = record.stop;
      present[record.slot] = true;
    } else if (record.op == 'D') {
      present[record.slot] = false;
    }
  }
  const char* names[kSlots];
  for (int i = 0; i < kSlots; ++i) {
    names[i] = paths[i];
    if (present[i] && !directory[i]) remove_mpi_lock_files(paths[i]);
  }
  remove_entries(names, directory, order, stop, present, kSlots, /*patience=*/true);
  ::_exit(0);
}

// Forks the guardian. Without it (fork refused), the signal handlers and destructors remain.
void fork_guardian() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pair[0]);
    ::close(pair[1]);
    return;
  }
  if (pid == 0) guard(pair[1]);
  ::close(pair[1]);
  g_guardian = pair[0];
  // The guardian is not waited for: it outlives us by design, and init reaps it.
}

std::uint8_t record_kind(LeftoverKind kind) noexcept {
  switch (kind) {
    case LeftoverKind::file: return 0;
    case LeftoverKind::directories: return 1;
    case LeftoverKind::staging_directory: return kStagingDirectory;
  }
  return 0;
}

void tell_guardian(const Record& record) {
  if (g_guardian < 0) return;
  while (::send(g_guardian, &record, sizeof record, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

// ---- Signals ---------------------------------------------------------------------------------
// Signals whose default action ends the process and that a handler can catch (signal(7)): SIGKILL
// and SIGSTOP cannot be caught; SIGCHLD, SIGCONT, SIGURG and SIGWINCH do not end it; SIGTSTP,
// SIGTTIN and SIGTTOU only stop it. The real-time signals SIGRTMIN..SIGRTMAX are added at run time.
constexpr int kAsynchronous[] = {SIGHUP,  SIGINT,  SIGQUIT,   SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,
                                 SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO,   SIGPWR,  SIGSTKFLT};
// ...and those that report a fault of the process itself. Another library (Open MPI prints a
// backtrace on these) may have a handler already: ours runs first and then hands the signal on.
constexpr int kFaults[] = {SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGSYS};

std::array<struct sigaction, NSIG> g_previous{};

extern "C" void remove_leftovers_and_pass_on(int signal_number) {
  remove_all_leftovers();
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
  ours.sa_handler = remove_leftovers_and_pass_on;
  sigemptyset(&ours.sa_mask);
  ours.sa_flags = SA_RESTART;
  sigaction(signal_number, &ours, nullptr);
}

void install_handlers_once() {
  static std::once_flag installed;
  std::call_once(installed, [] {
    for (const int s : kAsynchronous) install(s, false);
    for (const int s : kFaults) install(s, true);
    for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) install(s, false);
  });
}

}  // namespace

LeftoverSignalsBlocked::LeftoverSignalsBlocked() {
  sigset_t set;
  sigfillset(&set);
  for (const int s : kFaults) sigdelset(&set, s);  // a fault cannot wait
  pthread_sigmask(SIG_BLOCK, &set, &previous_);
}

LeftoverSignalsBlocked::~LeftoverSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

void start_leftover_guardian() {
  static std::once_flag started;
  std::call_once(started, fork_guardian);
}

int register_leftover(const std::string& relative, LeftoverKind kind, const std::string& outermost) {
  install_handlers_once();
  std::error_code ec;
  const std::string path = std::filesystem::absolute(relative, ec).lexically_normal().string();
  // Directories are removed up to `outermost`; a staging directory is itself alone (its length).
  const std::string stop_path =
      kind == LeftoverKind::directories ? std::filesystem::absolute(outermost.empty() ? relative : outermost, ec).lexically_normal().string()
      : kind == LeftoverKind::staging_directory ? path
                                                : std::string();
  if (ec || path.size() >= kPathBytes) {
    throw Error(ErrorKind::io, "cannot protect " + printable(relative) + " against being left behind: its path is longer than " +
                                   std::to_string(kPathBytes - 1) + " bytes");
  }
  const std::lock_guard lock(g_registry);
  for (int i = 0; i < kSlots; ++i) {
    Slot& slot = g_slots[static_cast<std::size_t>(i)];
    if (slot.in_use.load()) continue;
    std::memset(slot.path.data(), 0, kPathBytes);
    std::memcpy(slot.path.data(), path.c_str(), path.size());
    slot.kind = kind;
    slot.stop.store(static_cast<std::uint32_t>(std::min(stop_path.size(), path.size())));
    slot.order.store(++g_order);
    slot.in_use.store(true);  // the handler sees the slot only once it is complete
    Record record;
    record.op = 'A';
    record.slot = static_cast<std::uint8_t>(i);
    record.directory = record_kind(kind);
    record.order = slot.order.load();
    record.stop = slot.stop.load();
    std::memcpy(record.path, slot.path.data(), kPathBytes);
    tell_guardian(record);
    return i;
  }
  throw Error(ErrorKind::io, "cannot protect " + printable(relative) + " against being left behind: more than " +
                                 std::to_string(kSlots) + " files and directories at once");
}

void unregister_leftover(int handle) noexcept {
  if (handle < 0 || handle >= kSlots) return;
  const std::lock_guard lock(g_registry);
  g_slots[static_cast<std::size_t>(handle)].in_use.store(false);
  Record record;
  record.op = 'D';
  record.slot = static_cast<std::uint8_t>(handle);
  record.path[0] = '\0';
  tell_guardian(record);
}

void remove_all_leftovers() noexcept {
  const char* paths[kSlots];
  std::uint8_t directory[kSlots];
  std::uint32_t order[kSlots];
  std::uint32_t stop[kSlots];
  bool present[kSlots];
  for (int i = 0; i < kSlots; ++i) {
    const Slot& slot = g_slots[static_cast<std::size_t>(i)];
    present[i] = slot.in_use.load();
    paths[i] = slot.path.data();
    directory[i] = record_kind(slot.kind);
    order[i] = slot.order.load();
    stop[i] = slot.stop.load();
  }
  remove_entries(paths, directory, order, stop, present, kSlots);
}

}  // namespace shardinit::detail
