#include <chrono>
#include <cstdio>

#include <mpi.h>

#include "cli/commands.hpp"
#include "cli/fill_threads.hpp"
#include "cli/summary.hpp"
#include "shardinit/error.hpp"
#include "shardinit/io/checkpoint.hpp"
#include "shardinit/io/rank_checkpoint.hpp"
#include "mpi/agreement.hpp"
#include "shardinit/mpi/mpi.hpp"
#include "util/printable.hpp"

namespace shardinit::cli {

int run_verify(const VerifyOptions& options, const Launch& launch, const Manifest& manifest) {
  const auto start = std::chrono::steady_clock::now();
  const FillOptions fill{fill_threads(options, launch)};
  VerifyResult result;
  std::string target = options.per_rank_dir ? options.per_rank_dir->string() : options.file.string();
  switch (launch.kind) {
    case Launch::Kind::single:
      result = options.per_rank_dir ? verify_rank_checkpoint(manifest, manifest_mesh(manifest, 1), 0, *options.per_rank_dir, fill)
                                    : verify_checkpoint(manifest, options.file, fill);
      break;
    case Launch::Kind::mpi:
      result = options.per_rank_dir ? mpi::verify_rank_checkpoints(MPI_COMM_WORLD, manifest, *options.per_rank_dir, fill)
                                    : mpi::verify_checkpoint(MPI_COMM_WORLD, manifest, options.file, fill);
      break;
    case Launch::Kind::one_rank:
      if (!options.per_rank_dir) {
        throw Error(ErrorKind::invalid_argument, "rank " + std::to_string(launch.rank) + " of " +
                                                     std::to_string(launch.world) +
                                                     " alone checks its own rank file: use --per-rank DIR");
      }
      result = verify_rank_checkpoint(manifest, manifest_mesh(manifest, launch.world), launch.rank, *options.per_rank_dir, fill);
      target = (*options.per_rank_dir / rank_file_name(launch.rank, launch.world)).string();
      break;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const bool speaker = launch.rank == 0 || launch.kind == Launch::Kind::one_rank;
  if (!result.match) {
    if (speaker) {
      // A refusal of the file already starts with its path: not twice.
      const std::string shown = detail::printable(target);
      const std::string message = detail::printable(result.message, 4000);
      std::fprintf(stderr, "shardinit: MISMATCH: %s\n",
                   (message.starts_with(shown + ": ") ? message : shown + ": " + message).c_str());
    }
    return kMismatch;
  }
  if (!options.quiet && speaker) {
    std::fprintf(stderr, "shardinit: OK: %s matches %s: %s\n", detail::printable(target).c_str(),
                 detail::printable(options.manifest.string()).c_str(),
                 summary_line(static_cast<std::int64_t>(manifest.tensors.size()), result.elements_checked, 0, seconds).c_str());
  }
  return kSuccess;
}

}  // namespace shardinit::cli
