#pragma once
// A rank's shard of a tensor: the box its layout gives it on the mesh, filled with exactly the values
// of the same box of the whole tensor. Pure (no MPI): training code that knows its rank and world
// size calls this directly; shardinit::mpi::fill_local adds the communicator.

#include <cstdint>
#include <span>

#include "shardinit/fill/fill.hpp"
#include "shardinit/layout/mesh.hpp"

namespace shardinit {

// Fills what `rank` holds of `spec` (local_holding) into `out` and returns the holding: the box, dense
// and row-major, or under zero3 the held range of the flattened box. `out` holds holding.count
// elements, or for zero3 also holding.buffer (DeepSpeed's partition size: the padding after the held
// elements is filled with zeros, where DeepSpeed leaves it uninitialized). Throws
// Error(invalid_argument) for a layout that does not fit the tensor or the mesh, a rank outside the
// mesh, or an output of the wrong size.
// Fills the holding's `count` elements into the front of `out` and zeros the rest of it (a zero3
// partition's padding). Throws Error(invalid_argument) when `out` is smaller than the held elements.
void fill_holding(const TensorFiller& filler, const Holding& holding, std::span<std::byte> out);

Holding fill_shard(std::uint64_t seed, const TensorSpec& spec, const TensorLayout& layout, const ProcessMesh& mesh,
               int rank, std::span<std::byte> out);

}  // namespace shardinit
