#pragma once
// What a process must not leave behind when it dies before finishing: its temporary files and the
// directories it made for its outputs. Each is registered here while it exists and is then removed
//  - by its owner's destructor, when an exception unwinds (the ordinary way);
//  - by a signal handler, for every catchable signal whose default action ends the process;
//  - by a guardian process, where one was started (start_leftover_guardian; the CLI starts it first
//    thing), for everything else: SIGKILL (Open MPI ends a cancelled job with SIGTERM and, 10 ms
//    later, SIGKILL; a batch system's time limit ends with SIGKILL), the OOM killer. The guardian is a
//    fork in a session of its own (a kill of the rank's process group does not reach it) that holds
//    nothing but one end of a socket pair; when the other end closes (the process ended, however) it
//    removes whatever is still registered (and the lock files Open MPI's MPI-IO makes beside a file it
//    opens across nodes, FILE-JOBID-PID.lock, which a killed job leaves), and exits.
// A registration reaches the guardian before the file is created, so no moment is uncovered. What can
// still be left: everything, if the guardian is killed as well (kill -9 of every process, a crash of
// the node or of its power) -- the hidden .NAME.tmp-XXXXXX beside the target, safe to delete.

#include <signal.h>

#include <string>

namespace shardinit::detail {

enum class LeftoverKind {
  file,       // a temporary file
  directories,        // directories made for an output: the innermost, and up to which of its parents
  staging_directory,  // a hidden directory an output is staged in: its files, then itself
};

// Forks the guardian (once per process; later calls do nothing). Call it early, while the process is
// small and has one thread: before MPI_Init, before large allocations (the guardian keeps, copy-on-write,
// the pages the process had when it was forked). Without a guardian, SIGKILL leaves what it finds.
void start_leftover_guardian();

// Registers `path` (made absolute) for removal should the process end before unregister_leftover(),
// and returns a handle. Files are removed before directories, directories the latest registered
// first, each only while empty; for LeftoverKind::directories, `path` and then its parents, up to and
// including `outermost` (a prefix of it). Throws Error(io) when that cannot be promised: an absolute
// path of 4000 bytes or more, or more than 32 registrations at once.
[[nodiscard]] int register_leftover(const std::string& path, LeftoverKind kind, const std::string& outermost = {});
void unregister_leftover(int handle) noexcept;

// Removes every registered file and directory now. Async-signal-safe: for the signal handlers, and for
// paths that end the process without unwinding (MPI_Abort, the watchdog).
void remove_all_leftovers() noexcept;

// Blocks every catchable asynchronous signal for its lifetime (not the faults, which cannot wait), so
// that none can land between creating a file and registering it, or the reverse.
class LeftoverSignalsBlocked {
 public:
  LeftoverSignalsBlocked();
  ~LeftoverSignalsBlocked();
  LeftoverSignalsBlocked(const LeftoverSignalsBlocked&) = delete;
  LeftoverSignalsBlocked& operator=(const LeftoverSignalsBlocked&) = delete;

 private:
  sigset_t previous_;
};

}  // namespace shardinit::detail
