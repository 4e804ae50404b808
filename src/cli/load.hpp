#pragma once
#include <mpi.h>

#include "cli/commands.hpp"
#include "mpi/agreement.hpp"
#include "shardinit/manifest/manifest.hpp"

namespace shardinit::cli {

// Loads the manifest; under MPI every rank loads it and all agree on the outcome, so that a manifest
// one node cannot read ends the job with one message instead of leaving the others waiting.
inline Manifest load_for(const CommonOptions& options, const Launch& launch) {
  if (launch.kind != Launch::Kind::mpi) return load_manifest(options.manifest);
  Manifest manifest;
  mpi::detail::run_agreed(MPI_COMM_WORLD, [&] { manifest = load_manifest(options.manifest); });
  return manifest;
}

}  // namespace shardinit::cli
