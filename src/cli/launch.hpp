#pragma once
// Deciding how this process was started: under an MPI launcher, as one rank of a job started by
// another launcher (torchrun, SLURM) or by hand with --rank/--world, or alone.

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include "cli/commands.hpp"
#include "shardinit/error.hpp"
#include "util/core_share.hpp"
#include "util/printable.hpp"

namespace shardinit::cli {

// True when an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx) started this process.
inline bool started_by_mpi_launcher() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    if (std::getenv(variable) != nullptr) return true;
  }
  return false;
}

inline std::optional<int> environment_int(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  // The range of --rank and --world, so that RANK/WORLD_SIZE accept every world init accepts.
  if (*end != '\0' || value < 0 || value > std::numeric_limits<int>::max()) {
    throw Error(ErrorKind::invalid_argument, std::string("environment variable ") + name + "=\"" +
                                                 detail::printable(text) + "\" is not an integer from 0 to 2^31 - 1");
  }
  return static_cast<int>(value);
}

// --rank/--world win; then torchrun's RANK/WORLD_SIZE; then SLURM's SLURM_PROCID/SLURM_NTASKS.
inline Launch one_rank_launch(std::optional<int> rank, std::optional<int> world) {
  if (!rank && !world) {
    for (const auto& [r, w] : {std::pair{"RANK", "WORLD_SIZE"}, std::pair{"SLURM_PROCID", "SLURM_NTASKS"}}) {
      rank = environment_int(r);
      world = environment_int(w);
      if (rank || world) {
        if (!rank || !world) throw Error(ErrorKind::invalid_argument, std::string("set both ") + r + " and " + w + ", or neither");
        break;
      }
    }
  }
  const double cores = detail::this_process_cpus().count();
  if (!rank && !world) return Launch{Launch::Kind::single, 0, 1, cores};
  if (!rank || !world) throw Error(ErrorKind::invalid_argument, "give both --rank and --world, or neither");
  if (*world < 1 || *rank < 0 || *rank >= *world) {
    throw Error(ErrorKind::invalid_argument, "rank " + std::to_string(*rank) + " is not in a world of " + std::to_string(*world));
  }
  if (*world == 1) return Launch{Launch::Kind::single, 0, 1, cores};
  // torchrun starts LOCAL_WORLD_SIZE such processes on this node, none bound to its own cores.
  const int local = std::max(1, environment_int("LOCAL_WORLD_SIZE").value_or(1));
  return Launch{Launch::Kind::one_rank, *rank, *world, cores / local};
}

}  // namespace shardinit::cli
