#include <chrono>
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/summary.hpp"
#include "shardinit/io/checkpoint.hpp"

namespace shardinit::cli {

int run_verify(const VerifyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const Manifest manifest = load_manifest(options.manifest);
  const VerifyResult result = verify_checkpoint(manifest, options.file);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.match) {
    std::fprintf(stderr, "shardinit: MISMATCH: %s: %s\n", options.file.c_str(), result.message.c_str());
    return kMismatch;
  }
  if (!options.quiet) {
    std::fprintf(stderr, "shardinit: OK: %s matches %s: %s\n", options.file.c_str(), options.manifest.c_str(),
                 summary_line(static_cast<std::int64_t>(manifest.tensors.size()), result.elements_checked, 0, seconds).c_str());
  }
  return kSuccess;
}

}  // namespace shardinit::cli
