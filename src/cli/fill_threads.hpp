#pragma once
#include <algorithm>

#include "cli/commands.hpp"

namespace shardinit::cli {

// The fill threads a run uses (never changes a value): --threads, else one per core this process
// may fill with (Launch::cores). Less than a core of its own (ranks oversubscribing a node): 0, each
// piece generated and then written by the calling thread, since the other processes keep the cores
// busy meanwhile and workers would only add thread switches (checkpoint/pipeline.hpp).
inline int fill_threads(const CommonOptions& options, const Launch& launch) {
  if (options.threads > 0) return options.threads;
  constexpr double kRounding = 1e-9;  // 3 x (1/3) of a core is one core
  return std::clamp(static_cast<int>(launch.cores + kRounding), 0, kMaxThreads);
}

}  // namespace shardinit::cli
