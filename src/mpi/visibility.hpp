#pragma once
// Per-node visibility: under mpirun every rank opens the same path, but on many nodes a path may lead
// to storage of the node's own (a node-local /tmp or scratch), to nothing, or to a stale copy. A
// collective MPI_File_open on such a path hangs or silently writes several files. So before any
// collective open, every rank checks on its own node what it is about to open, and the verdicts are
// agreed: a rank that cannot see or write the path ends the job with one error naming it, its host
// and the path, and nothing is left on any node.

#include <mpi.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "format/atomic_file.hpp"
#include "format/made_directories.hpp"
#include "format/staged_directory.hpp"

namespace shardinit::mpi::detail {

// The global file of a collective write, created by rank 0 and seen by every rank.
struct SharedOutput {
  std::unique_ptr<shardinit::detail::AtomicFile> file;  // rank 0's, uncommitted; empty on the other ranks
  std::string temporary;                                // its path, on every rank
};

// Collective. Every rank checks that `target` may be written (its directory exists, it is not an input
// and not anything but a regular file, --force for an existing one); rank 0 creates the temporary file
// (checking and reserving `size` bytes of free space) and writes a random token into it; every rank then
// opens the temporary by the path rank 0 gave and must read the same token: a rank that finds no file
// there, or another one, fails with "cannot see the output file that rank 0 (host H) created ...".
// Each step is agreed (AgreedError on every rank; rank 0's temporary is removed on failure).
[[nodiscard]] SharedOutput create_shared_output(MPI_Comm comm, const std::filesystem::path& target,
                                                const shardinit::detail::OutputPolicy& policy, std::uint64_t size);

// The directory of a collective write (a Hugging Face checkpoint), staged by rank 0 and seen by every rank.
struct SharedDirectory {
  std::unique_ptr<shardinit::detail::StagedDirectory> directory;  // rank 0's, uncommitted; empty elsewhere
  std::string staging;                                            // its path, on every rank
};

// Collective, as create_shared_output for a directory: every rank checks the target
// (check_replaceable_directory), rank 0 stages the directory with `files` (at least one), and every
// rank must find rank 0's token in the first of them.
[[nodiscard]] SharedDirectory create_shared_directory(MPI_Comm comm, const std::filesystem::path& target,
                                                      const shardinit::detail::OutputPolicy& policy,
                                                      const std::vector<shardinit::detail::StagedFileSpec>& files,
                                                      const shardinit::detail::StagedDirectory::Replaceable& replaceable);

// Collective. Every rank opens `path` (never blocking: a FIFO or a device is refused) and compares its
// size, modification time and first 64 KiB with what rank 0 sees: a rank that cannot open it, or sees
// another file, fails (agreed). If rank 0 itself cannot open it, nothing is compared here: the caller's
// own check on rank 0 reports that.
void check_shared_input(MPI_Comm comm, const std::filesystem::path& path);

// Collective, for per-rank outputs (node-local storage is fine): every rank makes `directory` if
// missing, checks that its `target` in it may be written, and that the filesystem there has room for
// the files of all ranks on its host (`size` is this rank's file). Agreed. The directories it made are
// removed again unless the caller keeps them (once the files are committed).
[[nodiscard]] std::unique_ptr<shardinit::detail::MadeDirectories> check_rank_output(MPI_Comm comm, const std::filesystem::path& directory, const std::filesystem::path& target,
                       const shardinit::detail::OutputPolicy& policy, std::uint64_t size);

}  // namespace shardinit::mpi::detail
