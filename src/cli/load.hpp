#pragma once
#include <mpi.h>

#include <algorithm>
#include <thread>

#include "cli/commands.hpp"
#include "mpi/agreement.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/manifest/manifest.hpp"

namespace shardinit::cli {

// Loads the manifest; under MPI every rank loads it and all agree on the outcome, so that a manifest
// one node cannot read ends the job with one message instead of leaving the others waiting.
// The fill threads a run uses (never changes a value).
inline int fill_threads(const CommonOptions& options, const Launch& launch) {
  if (options.threads > 0) return options.threads;
  if (launch.kind == Launch::Kind::mpi) return 1;  // ranks usually fill the cores already
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

inline Manifest load_for(const CommonOptions& options, const Launch& launch) {
  if (launch.kind != Launch::Kind::mpi) return load_manifest(options.manifest);
  Manifest manifest;
  mpi::detail::run_agreed(MPI_COMM_WORLD, [&] { manifest = load_manifest(options.manifest); });
  return manifest;
}

}  // namespace shardinit::cli
