#include <chrono>
#include <cstdio>

#include <mpi.h>

#include "cli/commands.hpp"
#include "cli/fill_threads.hpp"
#include "cli/progress.hpp"
#include "cli/summary.hpp"
#include "shardinit/error.hpp"
#include "shardinit/io/checkpoint.hpp"
#include "shardinit/io/rank_checkpoint.hpp"
#include "mpi/agreement.hpp"
#include "shardinit/mpi/mpi.hpp"
#include "util/printable.hpp"

namespace shardinit::cli {

int run_init(const InitOptions& options, const Launch& launch, const Manifest& manifest) {
  const auto start = std::chrono::steady_clock::now();
  const bool speaker = launch.rank == 0 || launch.kind == Launch::Kind::one_rank;
  const FillOptions fill{fill_threads(options, launch)};
  WriteStats stats;
  std::string target;
  {
    ProgressLine progress(!options.quiet && speaker);
    const auto report = [&progress](std::int64_t done, std::int64_t total) { progress.update(done, total); };
    switch (launch.kind) {
      case Launch::Kind::single:
        if (options.per_rank_dir) {
          stats = write_rank_checkpoint(manifest, manifest_mesh(manifest, 1), 0, *options.per_rank_dir, options.force, fill);
          target = (*options.per_rank_dir / rank_file_name(0, 1)).string();
        } else {
          stats = write_checkpoint(manifest, options.output, options.force, report, fill);
          target = options.output.string();
        }
        break;
      case Launch::Kind::mpi:
        if (options.per_rank_dir) {
          stats = mpi::write_rank_checkpoints(MPI_COMM_WORLD, manifest, *options.per_rank_dir, options.force, fill);
          target = options.per_rank_dir->string() + " (" + std::to_string(launch.world) + " rank files)";
        } else {
          stats = mpi::write_checkpoint(MPI_COMM_WORLD, manifest, options.output, options.force, report, fill);
          target = options.output.string();
        }
        break;
      case Launch::Kind::one_rank:
        if (!options.per_rank_dir) {
          throw Error(ErrorKind::invalid_argument,
                      "rank " + std::to_string(launch.rank) + " of " + std::to_string(launch.world) +
                          " alone cannot write the global file (that needs every rank under mpirun): use --per-rank DIR");
        }
        stats = write_rank_checkpoint(manifest, manifest_mesh(manifest, launch.world), launch.rank,
                                      *options.per_rank_dir, options.force, fill);
        target = (*options.per_rank_dir / rank_file_name(launch.rank, launch.world)).string();
        break;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::int64_t elements = stats.elements;  // every rank's share, under MPI
  if (launch.kind == Launch::Kind::mpi) elements = mpi::detail::sum(MPI_COMM_WORLD, stats.elements, "counting the elements written");
  if (!options.quiet && speaker) {
    std::fprintf(stderr, "shardinit: wrote %s: %s%s\n", detail::printable(target).c_str(),
                 summary_line(stats.tensors, elements, stats.bytes, seconds).c_str(),
                 launch.kind == Launch::Kind::mpi ? (", " + std::to_string(launch.world) + " ranks").c_str() : "");
  }
  return kSuccess;
}

}  // namespace shardinit::cli
