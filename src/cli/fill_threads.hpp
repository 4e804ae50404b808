#pragma once
#include <algorithm>
#include <thread>

#include "cli/commands.hpp"

namespace shardinit::cli {

// The fill threads a run uses (never changes a value): --threads, else one per core for a lone
// process and one per rank under MPI (the ranks usually fill the cores already).
inline int fill_threads(const CommonOptions& options, const Launch& launch) {
  if (options.threads > 0) return options.threads;
  if (launch.kind == Launch::Kind::mpi) return 1;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace shardinit::cli
