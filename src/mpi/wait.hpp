#pragma once
// Waiting for other ranks without spinning and without hanging. Every collective step of shardinit
// is a non-blocking MPI operation completed by wait(), which sleeps between tests (a blocking MPI
// call busy-polls at 100 % CPU for as long as a peer is late), and every blocking collective MPI-IO
// call (open, set_view, sync, close) is entered only after a rendezvous() that all ranks reached.
//
// The watchdog: a wait that has lasted half the limit (set_watchdog_seconds, the CLI's --watchdog)
// asks every other rank whether it is alive (a roll call on reserved tags), and goes on waiting while
// the answers come. A rank that is waiting answers at once; a rank that is working answers at its
// next keep_alive() (called after every piece of at most 64 MiB it generates, writes or reads); a rank
// that is stopped, stuck in a system call (a hung filesystem) or on a dead host does not. A rank that
// has not answered a whole limit after it was asked has been silent that long: the waiting rank
// removes its temporary files, prints one error naming the silent ranks and their hosts, and ends the
// job with MPI_Abort. If everyone answers, the job is slow, not stuck, and the wait goes on. So the
// limit bounds how long a rank may go without answering, not the length of the job; a stopped rank is
// found about 1.5 limits after the others started waiting for it. Rank 0 calls the roll first; the
// others a little later, and not while another rank's roll call is under way.

#include <mpi.h>

#include <string>
#include <string_view>
#include <vector>

namespace shardinit::mpi::detail {

// The default limit: a rank that answers nothing for this long is taken for stopped or stuck. It must
// exceed the longest single step that cannot answer: one write or read of at most 64 MiB, or the
// flush of a rank's written data at the end.
inline constexpr double kDefaultWatchdogSeconds = 300;

// The limit for this process (seconds; 0 turns the watchdog off: waits then only sleep).
void set_watchdog_seconds(double seconds);
[[nodiscard]] double watchdog_seconds() noexcept;

// Learns the host of every rank of `comm` (MPI_Get_processor_name), for messages. Collective.
void learn_hosts(MPI_Comm comm);
// The host of `rank` of `comm`, as learnt, or "" if not known.
[[nodiscard]] std::string host_of(MPI_Comm comm, int rank);
// "rank 3 (host node7)", or "rank 3" when the host is not known.
[[nodiscard]] std::string rank_and_host(MPI_Comm comm, int rank);
// " (rank 3 on host node7)": what an agreed error's message ends with, naming the rank that failed.
[[nodiscard]] std::string failing_rank_suffix(MPI_Comm comm, int rank);
// "ranks 0-2, 5 (hosts node1, node2)": a sorted list of ranks of `comm`, compressed, with their hosts.
[[nodiscard]] std::string ranks_and_hosts(MPI_Comm comm, const std::vector<int>& ranks);

// Completes `request`, a non-blocking operation on `comm`, sleeping between tests and answering roll
// calls; `step` says what the job is doing, for the watchdog's message. Ends the job (does not
// return) if the watchdog finds a rank that does not answer.
void wait(MPI_Comm comm, MPI_Request& request, std::string_view step);

// Returns once every rank of `comm` has called it (MPI_Ibarrier completed by wait()).
void rendezvous(MPI_Comm comm, std::string_view step);

// Answers a roll call, if one is pending: called by a working rank between pieces of work, so that
// a rank that is slow but alive is never taken for stuck. Cheap (one MPI_Iprobe).
void keep_alive(MPI_Comm comm);

}  // namespace shardinit::mpi::detail
