#pragma once
// The cores a rank may fill with, agreed with the other ranks of its node (util/core_share.hpp).

#include <mpi.h>

namespace shardinit::mpi::detail {

// Collective over `comm`. This rank's fair share of its CPUs, in cores, given the affinity of every
// rank of `comm` on the same node (MPI_COMM_TYPE_SHARED): 1 for two ranks bound to a core each, 0.5
// for 4 unbound ranks on 2 cores, 8 for 4 ranks on a socket of 32 cores.
[[nodiscard]] double node_core_share(MPI_Comm comm);

}  // namespace shardinit::mpi::detail
