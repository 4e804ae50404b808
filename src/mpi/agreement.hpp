#pragma once
// Error agreement between ranks: a local failure becomes the same exception on every rank, decided
// at a point every rank reaches, so nobody is left blocked in a collective call.

#include <mpi.h>

#include <exception>
#include <functional>
#include <optional>

#include "shardinit/error.hpp"

namespace shardinit::mpi::detail {

// Runs `step` on this rank; then every rank learns whether any rank failed, and if one did, all
// throw the error of the lowest failing rank (std::exception other than Error counts as internal).
void run_agreed(MPI_Comm comm, const std::function<void()>& step);

// Throws, on every rank, the error one of them recorded (lowest rank first), if any.
void agree(MPI_Comm comm, const std::optional<Error>& local_error);

// Whether `e` was thrown by agree() on every rank (so every rank is past the collective calls), as
// opposed to an error of this rank alone.
[[nodiscard]] bool is_agreed(const Error& e) noexcept;

// Throws Error(io) naming `what` when an MPI call failed.
void check(int mpi_result, const std::string& what);

}  // namespace shardinit::mpi::detail
