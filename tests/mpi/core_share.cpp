// core_share: node_core_share under mpiexec, whatever the binding the launcher chose. Every rank's
// share is positive and at most its own CPUs; the shares of a node add up to the CPUs its ranks may
// run on, together (each CPU handed out once); ranks with the same CPUs get the same share.
//
//   core_share [SCRATCH_DIR]
//
// The summary line is "core_share: P passed, F failed".

#include <mpi.h>

#include <cmath>
#include <string>
#include <vector>

#include "mpi/check.hpp"
#include "mpi/core_share.hpp"
#include "util/core_share.hpp"

using namespace shardinit::mpi_test;
using shardinit::detail::CpuSet;

int main(int argc, char** argv) {
  return run_mpi_test(argc, argv, [] {
    const double share = shardinit::mpi::detail::node_core_share(MPI_COMM_WORLD);
    const CpuSet mine = shardinit::detail::this_process_cpus();
    expect(share > 0 && share <= mine.count() + 1e-12,
           "share " + std::to_string(share) + " of " + std::to_string(mine.count()) + " CPUs");

    // Gathered again here, independently: the node's ranks, their CPUs and their shares.
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int ranks = 1;
    MPI_Comm_size(node, &ranks);
    const int words = static_cast<int>(mine.words.size());
    std::vector<CpuSet> sets(static_cast<std::size_t>(ranks));
    MPI_Allgather(mine.words.data(), words, MPI_UINT64_T, sets.data(), words, MPI_UINT64_T, node);
    std::vector<double> shares(static_cast<std::size_t>(ranks));
    MPI_Allgather(&share, 1, MPI_DOUBLE, shares.data(), 1, MPI_DOUBLE, node);
    MPI_Comm_free(&node);

    CpuSet all;
    double total = 0;
    for (int r = 0; r < ranks; ++r) {
      for (std::size_t w = 0; w < all.words.size(); ++w) all.words[w] |= sets[r].words[w];
      total += shares[r];
      if (sets[r] == mine) expect(std::abs(shares[r] - share) < 1e-12, "the same CPUs as node rank " + std::to_string(r) + ", another share");
    }
    expect(std::abs(total - all.count()) < 1e-9,
           "the node's shares add up to " + std::to_string(total) + ", its ranks' CPUs are " + std::to_string(all.count()));
    return report_totals("core_share");
  });
}
