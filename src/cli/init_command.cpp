// shardinit init: one call of the library's driver for the launch kind; printing only.

#include <chrono>
#include <cstdio>

#include <mpi.h>

#include "cli/commands.hpp"
#include "cli/fill_threads.hpp"
#include "cli/progress.hpp"
#include "cli/summary.hpp"
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/checkpoint/rank_checkpoint.hpp"
#include "shardinit/mpi/mpi.hpp"
#include "util/printable.hpp"

namespace shardinit::cli {

namespace {

// The runner of each launch kind: under mpirun every rank together; otherwise this process (the
// whole output, or one rank's file of a per-rank set).
WriteStats write_for(const Launch& launch, const Manifest& manifest, const std::filesystem::path& target,
                     const OutputRequest& request, const WriteOptions& options) {
  if (launch.kind == Launch::Kind::mpi) return mpi::write_output(MPI_COMM_WORLD, manifest, target, request, options);
  return write_output(manifest, target, request, options, RankInJob{launch.rank, launch.world});
}

std::string shown_target(const InitOptions& options, const Launch& launch) {
  if (!options.per_rank_dir) return options.output.string();
  if (launch.kind == Launch::Kind::mpi) return options.per_rank_dir->string() + " (" + std::to_string(launch.world) + " rank files)";
  return (*options.per_rank_dir / rank_file_name(launch.rank, launch.world)).string();
}

}  // namespace

int run_init(const InitOptions& options, const Launch& launch, const Manifest& manifest) {
  const auto start = std::chrono::steady_clock::now();
  const bool speaker = launch.rank == 0 || launch.kind == Launch::Kind::one_rank;
  const std::filesystem::path& target = options.per_rank_dir ? *options.per_rank_dir : options.output;
  WriteStats stats;
  {
    ProgressLine progress(!options.quiet && speaker);
    const WriteOptions write{options.force, fill_threads(options, launch),
                             [&progress](std::int64_t done, std::int64_t total) { progress.update(done, total); }};
    stats = write_for(launch, manifest, target, options.request, write);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!options.quiet && speaker) {
    std::fprintf(stderr, "shardinit: wrote %s: %s%s\n", detail::printable(shown_target(options, launch)).c_str(),
                 summary_line(stats.tensors, stats.job_elements, stats.bytes, seconds).c_str(),
                 launch.kind == Launch::Kind::mpi ? (", " + std::to_string(launch.world) + " ranks").c_str() : "");
  }
  return kSuccess;
}

}  // namespace shardinit::cli
