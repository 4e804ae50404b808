// shardinit verify: one call of the library's driver for the launch kind; printing only.

#include <chrono>
#include <cstdio>

#include <mpi.h>

#include "cli/commands.hpp"
#include "cli/fill_threads.hpp"
#include "cli/summary.hpp"
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/checkpoint/rank_checkpoint.hpp"
#include "shardinit/mpi/mpi.hpp"
#include "util/printable.hpp"

namespace shardinit::cli {

namespace {

// The runner of each launch kind (as init's).
VerifyResult verify_for(const Launch& launch, const Manifest& manifest, const std::filesystem::path& target,
                        const OutputRequest& request, int threads) {
  const shardinit::VerifyOptions options{threads};
  if (launch.kind == Launch::Kind::mpi) return mpi::verify_output(MPI_COMM_WORLD, manifest, target, request, options);
  return verify_output(manifest, target, request, options, RankInJob{launch.rank, launch.world});
}

}  // namespace

int run_verify(const VerifyOptions& options, const Launch& launch, const Manifest& manifest) {
  const auto start = std::chrono::steady_clock::now();
  const std::filesystem::path& target = options.per_rank_dir ? *options.per_rank_dir : options.file;
  const VerifyResult result = verify_for(launch, manifest, target, options.request, fill_threads(options, launch));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const bool speaker = launch.rank == 0 || launch.kind == Launch::Kind::one_rank;
  const std::string shown = detail::printable(launch.kind == Launch::Kind::one_rank && options.per_rank_dir
                                                  ? (*options.per_rank_dir / rank_file_name(launch.rank, launch.world)).string()
                                                  : target.string());
  if (!result.match) {
    if (speaker) {
      // A refusal of the file already starts with its path: not twice.
      const std::string message = detail::printable(result.message, 4000);
      std::fprintf(stderr, "shardinit: MISMATCH: %s\n", (message.starts_with(shown + ": ") ? message : shown + ": " + message).c_str());
    }
    return kMismatch;
  }
  if (!options.quiet && speaker) {
    std::fprintf(stderr, "shardinit: OK: %s matches %s: %s\n", shown.c_str(), detail::printable(options.model.config.empty() ? options.manifest.string() : "--hf " + options.model.config.string()).c_str(),
                 summary_line(static_cast<std::int64_t>(manifest.tensors.size()), result.elements_checked, 0, seconds).c_str());
  }
  return kSuccess;
}

}  // namespace shardinit::cli
