#pragma once
// The small check harness of the MPI test programs: every rank counts its passed and failed checks,
// prints each failure with its rank, and rank 0 prints the totals ("N passed, N failed").

#include <mpi.h>

#include <cstdio>
#include <exception>
#include <string>

namespace shardinit::mpi_test {

inline int g_rank = 0;
inline int g_world = 1;
inline long long g_passed = 0;
inline long long g_failed = 0;

inline bool expect(bool condition, const std::string& what) {
  if (condition) {
    ++g_passed;
  } else {
    ++g_failed;
    std::fprintf(stderr, "FAIL [rank %d] %s\n", g_rank, what.c_str());
    std::fflush(stderr);
  }
  return condition;
}

// Sums the counts over the ranks, prints "<label>: N passed, N failed" on rank 0, and returns the
// exit status (0 only when no rank failed anything).
inline int report_totals(const std::string& label) {
  long long counts[2] = {g_passed, g_failed}, totals[2] = {0, 0};
  MPI_Allreduce(counts, totals, 2, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (g_rank == 0) std::printf("%s: %lld passed, %lld failed\n", label.c_str(), totals[0], totals[1]);
  return totals[1] == 0 ? 0 : 1;
}

// The main() of an MPI test program: MPI_Init, the rank and world in g_rank / g_world, `run()` for
// the exit status; an unexpected exception ends the whole job (MPI_Abort), so no rank is left waiting.
template <class Run>
int run_mpi_test(int argc, char** argv, Run&& run) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world);
  int status = 0;
  try {
    status = run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL [rank %d] unexpected exception: %s\n", g_rank, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  MPI_Finalize();
  return status;
}

}  // namespace shardinit::mpi_test
