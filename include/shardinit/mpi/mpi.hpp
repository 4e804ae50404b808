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
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/layout/mesh.hpp"

namespace shardinit::mpi {

// The MPI failure protocol. An AgreedError is thrown by every rank of the communicator together, at
// the same step, with the same kind and message: after it, no rank is inside a collective call, so
// the caller may go on (or return, or print once from rank 0) on every rank alike. Any other exception
// from these functions is this rank's alone (a bug, or memory exhausted): the other ranks may be
// waiting in a collective call, so end the job with MPI_Abort.
class AgreedError : public Error {
 public:
  using Error::Error;
};
using JobError = AgreedError;  // its former name

// What this rank holds of `spec` (see fill_shard): the mesh must have as many ranks as `comm`.
// Not collective: no communication beyond asking `comm` for this rank's number.
Holding fill_local(MPI_Comm comm, std::uint64_t seed, const TensorSpec& spec, const TensorLayout& layout,
               const ProcessMesh& mesh, std::span<std::byte> out);

// What this rank holds of the manifest's tensor `name`, on the manifest's job ("parallel" or "mesh")
// with as many ranks as `comm` (see fill_shard(const Manifest&, ...)). Not collective.
Holding fill_local(MPI_Comm comm, const Manifest& manifest, std::string_view name, std::span<std::byte> out);

// Called on rank 0 as it advances: (bytes of its share written, bytes of its share).
using Progress = ProgressCallback;

// Writes the output of `request` at `target` with every rank of `comm` (write_output of one process,
// byte-identical whatever the rank count). Shared outputs (one safetensors file, a Hugging Face
// directory): rank 0 creates the temporary file or stages the directory, every rank checks that it
// sees it, then generates exactly the bytes of its range of the write plan (contiguous, balanced,
// aligned: checkpoint/write_plan.hpp) and writes them with its own descriptor in pieces of 16 MiB
// while its threads generate the next ones; no communication until all are done; rank 0 renames into
// place once every rank has flushed. per_rank: each rank writes its own file; all appear only once all
// are written. The statistics are this rank's share (bytes: the whole output).
WriteStats write_output(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& target, const OutputRequest& request,
                        const WriteOptions& options = {});

// Checks `target` against the manifest, each rank reading back its range of the plan (or its own rank
// file) and comparing it in parallel. The result (the first difference in output order) is the same
// on every rank.
VerifyResult verify_output(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& target, const OutputRequest& request,
                           const VerifyOptions& options = {});

// write_output / verify_output of the one safetensors file.
WriteStats write_checkpoint(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& path,
                            const WriteOptions& options = {});
VerifyResult verify_checkpoint(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& path,
                               const VerifyOptions& options = {});

// Each rank writes / verifies its own rank-RRRRR-of-WWWWW.safetensors in `directory`.
WriteStats write_rank_checkpoints(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& directory,
                                  const WriteOptions& options = {});
VerifyResult verify_rank_checkpoints(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& directory,
                                     const VerifyOptions& options = {});

}  // namespace shardinit::mpi
