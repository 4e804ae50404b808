#include "mpi/core_share.hpp"

#include <tuple>
#include <vector>

#include "util/core_share.hpp"

namespace shardinit::mpi::detail {

double node_core_share(MPI_Comm comm) {
  using shardinit::detail::CpuSet;
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int ranks = 1;
  MPI_Comm_size(node, &ranks);
  const CpuSet mine = shardinit::detail::this_process_cpus();
  std::vector<CpuSet> all(static_cast<std::size_t>(ranks));
  constexpr int kWords = static_cast<int>(std::tuple_size_v<decltype(CpuSet::words)>);
  static_assert(sizeof(CpuSet) == kWords * sizeof(std::uint64_t), "the sets are gathered as one array of words");
  MPI_Allgather(mine.words.data(), kWords, MPI_UINT64_T, all.data(), kWords, MPI_UINT64_T, node);
  MPI_Comm_free(&node);
  return shardinit::detail::fair_core_share(mine, all);
}

}  // namespace shardinit::mpi::detail
