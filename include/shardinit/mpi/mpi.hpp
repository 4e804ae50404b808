#pragma once
// shardinit under MPI: each rank fills only its own shards; checkpoints are written and verified
// collectively. Every function here is collective over `comm`: all its ranks call it with the same
// manifest, file and options, which it checks first (ranks given different ones all throw JobError
// naming them, and nothing is written). When any rank fails, every rank throws the same JobError
// (the failing rank with the lowest number decides the message, which names it and its host): no
// rank is left waiting in a collective. The ranks wait for each other sleeping, not spinning, and a rank that stops answering
// (stopped, stuck in the filesystem, on a dead host) ends the job through the watchdog
// (src/mpi/wait.hpp; the CLI's --watchdog).

#include <mpi.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string_view>

#include "shardinit/error.hpp"
#include "shardinit/io/checkpoint.hpp"
#include "shardinit/layout/mesh.hpp"

namespace shardinit::mpi {

// The error every rank of the communicator throws together, at the same step: after it, no rank is
// inside a collective call, so the caller may go on (or return) on every rank alike. Any other
// shardinit::Error from these functions is this rank's alone (a bug): end the job with MPI_Abort.
class JobError : public Error {
 public:
  using Error::Error;
};

// What this rank holds of `spec` (see fill_shard): the mesh must have as many ranks as `comm`.
// Not collective: no communication beyond asking `comm` for this rank's number.
Holding fill_local(MPI_Comm comm, std::uint64_t seed, const TensorSpec& spec, const TensorLayout& layout,
               const ProcessMesh& mesh, std::span<std::byte> out);

// What this rank holds of the manifest's tensor `name`, on the manifest's job ("parallel" or "mesh")
// with as many ranks as `comm` (see fill_shard(const Manifest&, ...)). Not collective.
Holding fill_local(MPI_Comm comm, const Manifest& manifest, std::string_view name, std::span<std::byte> out);

// Called on rank 0 after each tensor: (elements written so far, elements in all).
using Progress = std::function<void(std::int64_t done, std::int64_t total)>;

// Writes the manifest's checkpoint as ONE file, byte-identical to write_checkpoint() in one process:
// every rank writes its own regions through MPI-IO subarray file views (exactly one replica writes a
// replicated region), in pieces of at most 64 MiB per rank, with independent writes whose counts are
// checked (collective buffering can hang when one rank's write fails). The file is written under a temporary
// name and renamed into place by rank 0 once every rank has succeeded. The returned statistics are
// this rank's share (bytes: the whole file).
WriteStats write_checkpoint(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& path,
                            bool overwrite, const Progress& progress = {}, FillOptions options = {});

// Checks the file against the manifest, each rank reading back the regions it would write. The
// result (the first difference in file order) is the same on every rank.
VerifyResult verify_checkpoint(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& path,
                               FillOptions options = {});

// Each rank writes / verifies its own rank-RRRRR-of-WWWWW.safetensors in `directory`.
WriteStats write_rank_checkpoints(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& directory,
                                  bool overwrite, FillOptions options = {});
VerifyResult verify_rank_checkpoints(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& directory,
                                     FillOptions options = {});

}  // namespace shardinit::mpi
