#include "mpi/agreement.hpp"

#include <functional>
#include <string>
#include <vector>

#include "mpi/wait.hpp"

namespace shardinit::mpi::detail {

void throw_agreed(ErrorKind kind, const std::string& message) { throw AgreedError(kind, message); }

void agree(MPI_Comm comm, const std::optional<Error>& local_error, std::string_view what) {
  int rank = 0, size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  // The lowest failing rank, and the smallest and largest hash of a failing rank's message: when every
  // rank failed with one message (an error every rank computed from agreed data), no rank is named.
  const unsigned long long hash =
      local_error ? std::hash<std::string_view>{}(local_error->what()) : 0;
  unsigned long long mine[3] = {local_error ? static_cast<unsigned long long>(rank) : static_cast<unsigned long long>(size),
                                local_error ? hash : ~0ULL, local_error ? ~hash : ~0ULL};
  unsigned long long least[3] = {0, 0, 0};
  MPI_Request request;
  MPI_Iallreduce(mine, least, 3, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm, &request);
  wait(comm, request, what);
  const int first = static_cast<int>(least[0]);
  if (first == size) return;
  const long long failing = sum(comm, local_error ? 1 : 0, "sharing an error");
  const bool everyone_alike = failing == size && least[1] == ~least[2];  // min hash == max hash
  // The first failing rank tells everyone what went wrong.
  int kind = local_error ? static_cast<int>(local_error->kind()) : 0;
  MPI_Ibcast(&kind, 1, MPI_INT, first, comm, &request);
  wait(comm, request, "sharing an error");
  std::string message = local_error ? local_error->what() : std::string();
  broadcast(comm, message, first, "sharing an error");
  if (size > 1 && !everyone_alike) message += failing_rank_suffix(comm, first);
  throw_agreed(static_cast<ErrorKind>(kind), message);
}

void run_agreed(MPI_Comm comm, std::string_view what, const std::function<void()>& step) {
  std::optional<Error> failure;
  try {
    step();
  } catch (const Error& e) {
    failure = e;
  } catch (const std::bad_alloc&) {
    failure = Error(ErrorKind::io, "out of memory");
  } catch (const std::exception& e) {
    failure = Error(ErrorKind::internal, std::string("unexpected error: ") + e.what());
  }
  agree(comm, failure, what);
}

void broadcast(MPI_Comm comm, std::string& text, int root, std::string_view what) {
  long long length = static_cast<long long>(text.size());
  MPI_Request request;
  MPI_Ibcast(&length, 1, MPI_LONG_LONG, root, comm, &request);
  wait(comm, request, what);
  text.resize(static_cast<std::size_t>(length));
  // In pieces that fit MPI's int count.
  constexpr long long kPiece = 1 << 30;
  for (long long at = 0; at < length; at += kPiece) {
    MPI_Ibcast(text.data() + at, static_cast<int>(std::min(kPiece, length - at)), MPI_CHAR, root, comm, &request);
    wait(comm, request, what);
  }
}

long long sum(MPI_Comm comm, long long value, std::string_view what) {
  long long total = 0;
  MPI_Request request;
  MPI_Iallreduce(&value, &total, 1, MPI_LONG_LONG, MPI_SUM, comm, &request);
  wait(comm, request, what);
  return total;
}

std::vector<unsigned long long> gather_all(MPI_Comm comm, std::span<const unsigned long long> mine, std::string_view what) {
  int ranks = 1;
  MPI_Comm_size(comm, &ranks);
  const int count = static_cast<int>(mine.size());
  std::vector<unsigned long long> all(mine.size() * static_cast<std::size_t>(ranks));
  MPI_Request request;
  MPI_Iallgather(mine.data(), count, MPI_UNSIGNED_LONG_LONG, all.data(), count, MPI_UNSIGNED_LONG_LONG, comm, &request);
  wait(comm, request, what);
  return all;
}

long long maximum(MPI_Comm comm, long long value, std::string_view what) {
  long long most = 0;
  MPI_Request request;
  MPI_Iallreduce(&value, &most, 1, MPI_LONG_LONG, MPI_MAX, comm, &request);
  wait(comm, request, what);
  return most;
}

void check(int mpi_result, const std::string& what) {
  if (mpi_result == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(mpi_result, text, &length);
  throw Error(ErrorKind::io, what + ": " + std::string(text, static_cast<std::size_t>(length)));
}

}  // namespace shardinit::mpi::detail
