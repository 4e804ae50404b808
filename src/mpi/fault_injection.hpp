#pragma once
// Fault injection for the tests of failure under MPI. SHARDINIT_FAULT="SITE@RANK[,SITE@RANK...]"
// makes rank RANK fail at SITE the way a real fault would there: an exception in its own work, an
// MPI error code from one MPI call, or SIGKILL. The tests use it to prove that one rank's failure
// ends the whole job with one clear message and leaves no file (tests/mpi/faults.sh). Without the
// variable nothing changes; it is read once.
//
// Sites: plan (a rank-local error before the output is created), fill (as it starts generating its
// range), write (a write of its range fails), read (a read fails, in verify); and, after the rank's
// first piece is written (or read and checked): kill (SIGKILL to
// itself), stop (SIGSTOP to itself: a rank the batch system stopped), stall (blocks forever in a
// system call without answering anyone: a hung filesystem); stop_in_fill (SIGSTOP as it starts
// generating its first piece, while the others go on to the next collective step); slow (3 s of
// silence after every piece: a slow filesystem, not a stuck one); squat (with --per-rank, a file
// appears at the rank's target after its file is written, before the commit).

#include <string_view>

namespace shardinit::mpi::detail {

// Whether SHARDINIT_FAULT asks `rank` to fail at `site`. Throws Error(invalid_argument) naming the
// variable's value if it is not a list of SITE@RANK with known sites.
[[nodiscard]] bool fault_injected(std::string_view site, int rank);

// The faults that strike after a rank's first piece (kill, stop, stall), if asked for `rank`; called
// after every piece, acts once.
void after_first_piece(int rank);
// The fault that strikes as a rank starts generating its first piece (stop_in_fill).
void before_filling(int rank);

}  // namespace shardinit::mpi::detail
