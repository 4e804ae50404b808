// --hf CONFIG: the manifest of a Hugging Face model, made from its config.json (cli/commands.hpp).

#include "cli/commands.hpp"
#include "format/regular_file.hpp"
#include "shardinit/error.hpp"
#include "shardinit/models/hf_model.hpp"
#include "util/printable.hpp"

namespace shardinit::cli {

namespace {

// A config.json is a few kilobytes; anything near this is not one.
constexpr std::uint64_t kMaxConfigBytes = std::uint64_t{16} << 20;

HfManifestOptions library_options(const ModelOptions& o) {
  HfManifestOptions options;
  if (o.init == "hf") {
    options.init = ModelInit::hf;
  } else if (o.init == "colossal") {
    options.init = ModelInit::colossal;
  } else {
    throw Error(ErrorKind::invalid_argument,
                "--init " + detail::quote(o.init) + " is not a rule set (hf: the architecture's _init_weights; colossal: Colossal-AI's layer defaults)");
  }
  if (o.tp_mode != "1d") {
    throw Error(ErrorKind::invalid_argument, "--tp-mode " + detail::quote(o.tp_mode) +
                                                 " is not supported for --hf (only 1d: the Colossal-AI / Megatron policies of these models)");
  }
  options.tensor_parallel = o.tp;
  options.pipeline_parallel = o.pp;
  options.data_parallel = o.dp;
  options.expert_parallel = o.ep;
  if (!o.dtype.empty()) options.dtype = parse_dtype(o.dtype);
  options.seed = o.seed;
  return options;
}

}  // namespace

ModelManifest make_model_manifest(const ModelOptions& options) {
  const HfManifestOptions library = library_options(options);
  const std::string shown = detail::printable(options.config.string());
  const detail::RegularFile file(options.config, "model config");
  ModelManifest model;
  model.config_text = file.read_all(kMaxConfigBytes);
  model.manifest_text = manifest_from_hf_config(model.config_text, library, shown);
  model.manifest = parse_manifest(model.manifest_text, "the manifest made from " + shown);
  model.manifest.source = ManifestSource{options.config, file.identity().device, file.identity().inode, "model config"};
  // The manifest kept beside the weights leaves the layouts out (one tensor-parallel rank, one stage,
  // the data size from the world): the values never depend on them, so the directory is the same
  // bytes for every topology, and verify can re-check it at any rank count.
  HfManifestOptions neutral = library;
  neutral.tensor_parallel = 1;
  neutral.pipeline_parallel = 1;
  neutral.data_parallel.reset();
  neutral.expert_parallel = 1;
  model.kept_manifest_text = manifest_from_hf_config(model.config_text, neutral, shown);
  return model;
}

std::vector<CompanionFile> model_companions(const ModelManifest& model) {
  return {{"config.json", model.config_text}, {kModelManifestFile, model.kept_manifest_text}};
}

}  // namespace shardinit::cli
