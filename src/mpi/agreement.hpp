#pragma once
// Error agreement between ranks: a local failure becomes the same exception (mpi::AgreedError) on every
// rank, decided at a point every rank reaches, so nobody is left blocked in a collective call. The
// collective steps themselves are non-blocking operations completed by wait() (mpi/wait.hpp): they
// sleep instead of spinning, and a rank that stops answering is found by the watchdog.

#include <mpi.h>

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/mpi/mpi.hpp"

namespace shardinit::mpi::detail {

// Runs `step` on this rank; then every rank learns whether any rank failed, and if one did, all
// throw AgreedError with the error of the lowest failing rank, its message followed by "(rank R on
// host H)" when there is more than one rank (std::bad_alloc counts as io, any other std::exception as internal: the exit statuses of one process).
// `what` names the step for the watchdog.
void run_agreed(MPI_Comm comm, std::string_view what, const std::function<void()>& step);

// Throws AgreedError on every rank with the error one of them recorded (lowest rank first), if any.
void agree(MPI_Comm comm, const std::optional<Error>& local_error, std::string_view what);

// The AgreedError of an error every rank computed identically from agreed data (no communication).
[[noreturn]] void throw_agreed(ErrorKind kind, const std::string& message);

// Collective helpers on top of wait(): every rank gets `root`'s text / the sum / the maximum.
void broadcast(MPI_Comm comm, std::string& text, int root, std::string_view what);
[[nodiscard]] long long sum(MPI_Comm comm, long long value, std::string_view what);
[[nodiscard]] long long maximum(MPI_Comm comm, long long value, std::string_view what);
// Every rank's `mine` (the same count on every rank), concatenated in rank order.
[[nodiscard]] std::vector<unsigned long long> gather_all(MPI_Comm comm, std::span<const unsigned long long> mine,
                                                         std::string_view what);

// Throws Error(io) naming `what` when an MPI call failed.
void check(int mpi_result, const std::string& what);

}  // namespace shardinit::mpi::detail
