#pragma once
// From a Hugging Face model's config.json to its manifest (docs/models.md): every tensor of the
// model's state dict as `save_pretrained` writes it (the names, shapes and dtypes of the transformers
// modeling code), each with an initializer (the architecture's own `_init_weights`, or Colossal-AI's
// layer defaults), its Colossal-AI 1D tensor-parallel layout, its pipeline stage and, for a mixture of
// experts, the expert-parallel rank that holds each expert.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardinit/dtype.hpp"

namespace shardinit {

enum class ModelInit {
  hf,        // the architecture's _init_weights: normal(0, initializer_range), zero biases, unit norms
  colossal,  // Colossal-AI's layer defaults: kaiming_uniform(a = sqrt 5) weights, xavier_uniform biases
};

struct HfManifestOptions {
  ModelInit init = ModelInit::hf;
  std::uint64_t seed = 42;
  int tensor_parallel = 1;             // Colossal-AI 1D tensor parallelism over this many ranks
  int pipeline_parallel = 1;           // pipeline stages; decoder layers placed by the uniform partition
  std::optional<int> data_parallel;    // the data-parallel size; default: derived from the world
  int expert_parallel = 1;             // experts dealt out over this many data-parallel ranks (MoE models)
  std::optional<DType> dtype;          // default: the config's torch_dtype (or dtype), else f32
};

// The architectures manifest_from_hf_config knows, as config.json's "architectures" names them.
[[nodiscard]] const std::vector<std::string>& supported_hf_architectures();

// The manifest (JSON text, docs/manifest.md) of the model that `config_json` describes. `source`
// names the config in messages. Throws Error(parse) for malformed JSON and Error(invalid_argument)
// naming the key and its value for anything else: an unknown architecture (listing the supported
// ones), a missing or bad dimension, a layout the model cannot take (heads not divisible by the
// tensor-parallel size, ...).
[[nodiscard]] std::string manifest_from_hf_config(std::string_view config_json, const HfManifestOptions& options,
                                                  std::string_view source = "<config>");

}  // namespace shardinit
