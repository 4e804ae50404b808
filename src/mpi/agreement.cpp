#include "mpi/agreement.hpp"

#include <string>
#include <vector>

namespace shardinit::mpi::detail {

namespace {
std::string g_last_agreed;  // message of the last error agree() threw
}  // namespace

bool is_agreed(const Error& e) noexcept { return !g_last_agreed.empty() && g_last_agreed == e.what(); }

void agree(MPI_Comm comm, const std::optional<Error>& local_error) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  int size = 0;
  MPI_Comm_size(comm, &size);
  const int mine = local_error ? rank : size;
  int first = size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return;
  // The first failing rank tells everyone what went wrong.
  int kind = local_error ? static_cast<int>(local_error->kind()) : 0;
  std::string message = local_error ? local_error->what() : std::string();
  int length = static_cast<int>(message.size());
  MPI_Bcast(&kind, 1, MPI_INT, first, comm);
  MPI_Bcast(&length, 1, MPI_INT, first, comm);
  message.resize(static_cast<std::size_t>(length));
  MPI_Bcast(message.data(), length, MPI_CHAR, first, comm);
  if (size > 1) message += " (rank " + std::to_string(first) + ")";
  g_last_agreed = message;
  throw Error(static_cast<ErrorKind>(kind), message);
}

void run_agreed(MPI_Comm comm, const std::function<void()>& step) {
  std::optional<Error> failure;
  try {
    step();
  } catch (const Error& e) {
    failure = e;
  } catch (const std::bad_alloc&) {
    failure = Error(ErrorKind::io, "out of memory");
  } catch (const std::exception& e) {
    failure = Error(ErrorKind::io, std::string("unexpected error: ") + e.what());
  }
  agree(comm, failure);
}

void check(int mpi_result, const std::string& what) {
  if (mpi_result == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(mpi_result, text, &length);
  throw Error(ErrorKind::io, what + ": " + std::string(text, static_cast<std::size_t>(length)));
}

}  // namespace shardinit::mpi::detail
