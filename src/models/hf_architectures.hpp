#pragma once
// The parameters of each supported architecture's state dict, in the order the modeling code
// registers them (the order of `model.state_dict()`, which huggingface_hub's shard split follows),
// each with the role that decides its initializer, layout and pipeline stage.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/hf_config.hpp"

namespace shardinit::detail {

enum class ParameterRole {
  embedding,           // token embedding (vocab, hidden)
  position_embedding,  // GPT-2's learned positions (n_positions, n_embd)
  weight,              // a Linear (out, in) or GPT-2 Conv1D (in, out) weight
  bias,                // its bias (out,)
  norm_weight,         // RMSNorm / LayerNorm weight: ones
  norm_bias,           // LayerNorm bias: zeros
  lm_head,             // the output projection (vocab, hidden), when not tied
};

// How Colossal-AI / Megatron 1D tensor parallelism splits the layer the parameter belongs to.
enum class ParallelRole { replicated, column, row };

struct ModelParameter {
  std::string name;
  std::vector<std::int64_t> shape;
  ParameterRole role = ParameterRole::weight;
  ParallelRole parallel = ParallelRole::replicated;
  std::int64_t in_features = 0;   // of the layer (weights and biases): the fan_in Colossal-AI passes
  std::int64_t out_features = 0;
  bool stored_in_out = false;     // GPT-2's Conv1D: weight (in, out)
  bool residual_projection = false;  // GPT-2's c_proj.weight: std / sqrt(2 n_layer)
  std::optional<std::int64_t> layer;  // decoder layer; none: before the layers (embeddings) or after
  bool after_layers = false;      // the final norm and lm_head (the last pipeline stage)
  bool tied = false;              // the embedding that is also the output projection (first and last stage)
  std::optional<std::int64_t> expert;  // Mixtral: the expert (of config.experts) the weight belongs to
  std::int64_t fused_parts = 1;   // GPT-2's c_attn: q, k and v side by side in its output features
};

// Every persistent parameter save_pretrained writes for `config` (tied weights once), in order.
[[nodiscard]] std::vector<ModelParameter> hf_parameters(const HfConfig& config);

}  // namespace shardinit::detail
