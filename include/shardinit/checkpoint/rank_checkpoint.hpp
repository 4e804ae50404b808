#pragma once
// Per-rank checkpoints: each rank writes only its own shards, to its own safetensors file
// (rank-00003-of-00008.safetensors), with each tensor's global shape and box recorded in
// __metadata__ so that the files can be reassembled into the global tensors. No communication:
// usable under mpirun, or for one rank alone (--rank R --world W), even for tensors far larger than
// the machine.

#include <filesystem>
#include <string>

#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/layout/mesh.hpp"

namespace shardinit {

inline constexpr const char* kMetaRank = "shardinit.rank";
inline constexpr const char* kMetaWorld = "shardinit.world";
inline constexpr const char* kMetaMesh = "shardinit.mesh";      // "[2, 4]"
// JSON object: {"tensor name": {"shape": [global], "start": [...], "extent": [...], "layout": "..."}}
inline constexpr const char* kMetaShards = "shardinit.shards";

// "rank-00003-of-00008.safetensors"
[[nodiscard]] std::string rank_file_name(int rank, int world);

// The file of `rank` for `manifest` on `mesh`: every tensor's local box (empty boxes included, so
// each file lists every tensor), tensors stored with their local shapes.
[[nodiscard]] SafetensorsLayout rank_checkpoint_layout(const Manifest& manifest, const ProcessMesh& mesh, int rank);

// Writes `rank`'s file into `directory` (created if missing), atomically, as write_safetensors.
WriteStats write_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                 const std::filesystem::path& directory, const WriteOptions& options = {});

// Recomputes `rank`'s shards and compares them with its file in `directory`. A data mismatch is
// reported at its index in the local shard, with its global element and flat index added.
[[nodiscard]] VerifyResult verify_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                                  const std::filesystem::path& directory, const VerifyOptions& options = {});

}  // namespace shardinit
