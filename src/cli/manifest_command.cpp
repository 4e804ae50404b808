// shardinit manifest --hf CONFIG: print the manifest of a Hugging Face model, or write it (atomically).

#include <cstdio>

#include "cli/commands.hpp"
#include "format/atomic_file.hpp"
#include "util/printable.hpp"

namespace shardinit::cli {

int run_manifest(const ManifestOptions& options, const ModelManifest& model) {
  const std::string& text = model.manifest_text;
  if (!options.output) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (std::fflush(stdout) != 0) throw Error(ErrorKind::io, "cannot write the manifest to standard output");
    return kSuccess;
  }
  detail::OutputPolicy policy{options.force, {}};
  policy.inputs.push_back({detail::FileIdentity{model.manifest.source->device, model.manifest.source->inode},
                           "the model config " + detail::printable(options.model.config.string())});
  detail::AtomicFile file(*options.output, policy, text.size());
  file.write(std::as_bytes(std::span(text)));
  file.commit();
  return kSuccess;
}

}  // namespace shardinit::cli
