#include <chrono>
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/summary.hpp"
#include "shardinit/io/checkpoint.hpp"

namespace shardinit::cli {

int run_init(const InitOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const Manifest manifest = load_manifest(options.manifest);
  const WriteStats stats = write_checkpoint(manifest, options.output, options.force);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!options.quiet) {
    std::fprintf(stderr, "shardinit: wrote %s: %s\n", options.output.c_str(),
                 summary_line(stats.tensors, stats.elements, stats.bytes, seconds).c_str());
  }
  return kSuccess;
}

}  // namespace shardinit::cli
