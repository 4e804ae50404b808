#pragma once
// A rank's shard of a tensor: the box its layout gives it on the mesh, filled with exactly the values
// of the same box of the whole tensor. Pure (no MPI): training code that knows its rank and world
// size calls this directly; shardinit::mpi::fill_local adds the communicator.

#include <cstdint>
#include <span>

#include "shardinit/fill/fill.hpp"
#include "shardinit/layout/mesh.hpp"

namespace shardinit {

// Fills `rank`'s box of `spec` into `out` (dense, row-major within the box; local_box(...).element_count()
// elements) and returns the box. Throws Error(invalid_argument) for a layout that does not fit the
// tensor or the mesh, a rank outside the mesh, or an output of the wrong size.
Box fill_shard(std::uint64_t seed, const TensorSpec& spec, const TensorLayout& layout, const ProcessMesh& mesh,
               int rank, std::span<std::byte> out);

}  // namespace shardinit
