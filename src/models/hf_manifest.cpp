// A config's parameters (hf_architectures.cpp) turned into a manifest: each role's initializer, its
// Colossal-AI 1D layout, its pipeline stage and its expert (docs/models.md has the tables).

#include <cmath>

#include <nlohmann/json.hpp>

#include "models/hf_architectures.hpp"
#include "models/hf_config.hpp"
#include "shardinit/error.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/models/hf_model.hpp"

namespace shardinit {

namespace {

using detail::HfArchitecture;
using detail::HfConfig;
using detail::ModelParameter;
using detail::ParallelRole;
using detail::ParameterRole;
using Json = nlohmann::ordered_json;

Json normal(double std) { return Json{{"fn", "normal"}, {"mean", 0}, {"std", std}}; }

// The architecture's own _init_weights (PreTrainedModel subclasses in modeling_*.py): Linear, Conv1D
// and Embedding weights normal(0, initializer_range), biases zero, norms one (weight) and zero (bias);
// GPT-2 then redraws every c_proj.weight with std initializer_range / sqrt(2 n_layer)
// (GPT2PreTrainedModel._init_weights, "the OpenAI GPT-2 paper scheme").
Json hf_init(const ModelParameter& p, const HfConfig& c) {
  switch (p.role) {
    case ParameterRole::embedding:
    case ParameterRole::position_embedding:
    case ParameterRole::lm_head: return normal(c.initializer_range);
    case ParameterRole::weight:
      return normal(p.residual_projection ? c.initializer_range / std::sqrt(2.0 * static_cast<double>(c.layers))
                                          : c.initializer_range);
    case ParameterRole::bias:
    case ParameterRole::norm_bias: return Json{{"fn", "zeros"}};
    case ParameterRole::norm_weight: return Json{{"fn", "ones"}};
  }
  return {};
}

// Colossal-AI's layer defaults (colossalai/legacy/nn/layer/parallel_1d/layers.py: Linear1D_Col,
// Linear1D_Row, VocabParallelEmbedding1D): weight_initializer kaiming_uniform_(a=math.sqrt(5)),
// bias_initializer xavier_uniform_(a=1, scale=1) with fan_in, embeddings normal_(); LayerNorm and
// RMSNorm ones and zeros.
Json colossal_init(const ModelParameter& p) {
  switch (p.role) {
    case ParameterRole::embedding:
    case ParameterRole::position_embedding: return normal(1.0);
    case ParameterRole::weight:
    case ParameterRole::lm_head:
      return Json{{"fn", "kaiming_uniform"}, {"a", std::sqrt(5.0)}, {"mode", "fan_in"}, {"nonlinearity", "leaky_relu"}};
    case ParameterRole::bias: return Json{{"fn", "xavier_uniform"}, {"a", 1}, {"scale", 1}};
    case ParameterRole::norm_bias: return Json{{"fn", "zeros"}};
    case ParameterRole::norm_weight: return Json{{"fn", "ones"}};
  }
  return {};
}

// The 1D preset (docs/layouts.md, mode 1d) of each role: column-parallel layers split their output
// features, row-parallel ones their input features (the bias then replicated), the embedding and
// lm_head their vocabulary. GPT-2's Conv1D weights are stored (in, out), so their output features
// are dimension 1: a split of that dimension over tp (Colossal-AI's GPT2FusedLinearConv1D_Col), or of
// dimension 0 (GPT2FusedLinearConv1D_Row).
Json layout_of(const ModelParameter& p) {
  const auto split = [](const char* dim) { return Json{{"shard", {{dim, Json::array({"tp"})}}}}; };
  switch (p.role) {
    case ParameterRole::embedding: return "vocab_embedding";
    case ParameterRole::lm_head: return "linear_col";
    case ParameterRole::weight:
      if (p.stored_in_out) {
        return p.parallel == ParallelRole::column ? split("1") : p.parallel == ParallelRole::row ? split("0") : Json("replicate");
      }
      return p.parallel == ParallelRole::column ? "linear_col" : p.parallel == ParallelRole::row ? "linear_row" : "replicate";
    case ParameterRole::bias:
      return p.parallel == ParallelRole::column ? "linear_col_bias" : p.parallel == ParallelRole::row ? "linear_row_bias" : "replicate";
    default: return "replicate";
  }
}

void check_layout_fits(const HfConfig& c, const HfManifestOptions& o, std::string_view source) {
  const std::string where = std::string(source) + ": ";
  if (o.tensor_parallel < 1 || o.pipeline_parallel < 1 || o.expert_parallel < 1 || (o.data_parallel && *o.data_parallel < 1)) {
    throw Error(ErrorKind::invalid_argument, where + "the tensor, pipeline, data and expert parallel sizes must be at least 1");
  }
  if (o.expert_parallel > 1) {
    if (c.architecture != HfArchitecture::mixtral) {
      throw Error(ErrorKind::invalid_argument, where + "--ep " + std::to_string(o.expert_parallel) + " needs a mixture of experts (" +
                                                   c.architecture_name + " has no experts; MixtralForCausalLM has)");
    }
    // Colossal-AI's EPMixtralSparseMoeBlock.setup_process_groups and Megatron-Core's MoELayer refuse it too.
    if (c.experts % o.expert_parallel != 0) {
      throw Error(ErrorKind::invalid_argument, where + "num_local_experts " + std::to_string(c.experts) +
                                                   " is not divisible by the expert parallel size " + std::to_string(o.expert_parallel) +
                                                   " (each expert rank holds the same number of whole experts)");
    }
    if (o.data_parallel && *o.data_parallel % o.expert_parallel != 0) {
      throw Error(ErrorKind::invalid_argument, where + "--ep " + std::to_string(o.expert_parallel) + " must divide the data-parallel size " +
                                                   std::to_string(*o.data_parallel) + " (--dp): expert parallelism splits the data-parallel ranks");
    }
  }
  const int t = o.tensor_parallel;
  if (t > 1) {
    // GPT-2's Conv1D layers are split by a custom layout (torch.chunk), which would take an uneven
    // split; Colossal-AI's divide() refuses one.
    if (c.architecture == HfArchitecture::gpt2 && c.intermediate_size % t != 0) {
      throw Error(ErrorKind::invalid_argument, where + "n_inner " + std::to_string(c.intermediate_size) +
                                                   " is not divisible by the tensor-parallel size " + std::to_string(t) +
                                                   " (each rank holds an equal part of the MLP)");
    }
    if (c.heads % t != 0) {
      throw Error(ErrorKind::invalid_argument, where + "num_attention_heads " + std::to_string(c.heads) +
                                                   " is not divisible by the tensor-parallel size " + std::to_string(t) +
                                                   " (each rank holds whole heads)");
    }
    if (c.kv_heads % t != 0) {
      throw Error(ErrorKind::invalid_argument, where + "num_key_value_heads " + std::to_string(c.kv_heads) +
                                                   " is not divisible by the tensor-parallel size " + std::to_string(t) +
                                                   " (each rank holds whole key/value heads)");
    }
  }
  if (o.pipeline_parallel > c.layers) {
    throw Error(ErrorKind::invalid_argument, where + "--pp " + std::to_string(o.pipeline_parallel) + " stages for " +
                                                 std::to_string(c.layers) + " layers: every stage needs a layer");
  }
}

}  // namespace

std::string manifest_from_hf_config(std::string_view config_json, const HfManifestOptions& options, std::string_view source) {
  const HfConfig config = detail::read_hf_config(config_json, source);
  check_layout_fits(config, options, source);
  const DType dtype = options.dtype.value_or(config.dtype.value_or(DType::f32));
  const int stages = options.pipeline_parallel;

  Json parallel = {{"tensor", {{"mode", "1d"}, {"size", options.tensor_parallel}}}};
  if (stages > 1) parallel["pipeline"] = {{"size", stages}, {"layers", config.layers}, {"partition", "uniform"}};
  if (options.data_parallel) parallel["data"] = *options.data_parallel;
  if (options.expert_parallel > 1) parallel["expert"] = options.expert_parallel;

  Json tensors = Json::array();
  for (const ModelParameter& p : detail::hf_parameters(config)) {
    Json t = {{"name", p.name}, {"shape", p.shape}, {"dtype", std::string(dtype_name(dtype))}};
    t["init"] = options.init == ModelInit::hf ? hf_init(p, config) : colossal_init(p);
    if (options.init == ModelInit::colossal && (p.role == ParameterRole::weight || p.role == ParameterRole::lm_head)) {
      t["fan_in"] = p.in_features;  // the global layer's, as Colossal-AI's layers pass them
      t["fan_out"] = p.out_features;
    }
    if (options.init == ModelInit::colossal && p.role == ParameterRole::bias) t["fan_in"] = p.in_features;
    t["layout"] = layout_of(p);
    // GPT-2's c_attn: q, k and v side by side along the output features; each is split over tp, and a
    // rank holds its part of each, concatenated (split_fused_qkv_in_gpt2_style,
    // colossalai/shardformer/layer/qkv_fused_linear.py: [Q1, Q2, K1, K2, V1, V2] -> [Q1, K1, V1]).
    if (p.fused_parts > 1) {
      t["fused"] = {{"dim", p.role == ParameterRole::weight && p.stored_in_out ? 1 : 0}, {"parts", p.fused_parts}};
    }
    // nn.Embedding(vocab, hidden, padding_idx=config.pad_token_id) in the Llama family (GPT-2's wte has
    // none). Both rule sets zero that row: _init_weights does, and so does Colossal-AI's
    // VocabParallelEmbedding1D.reset_parameters (_fill_padding_idx_with_zero,
    // colossalai/shardformer/layer/embedding.py), which keeps the replaced module's padding_idx.
    if (p.role == ParameterRole::embedding && config.pad_token_id && config.architecture != HfArchitecture::gpt2) {
      t["padding_idx"] = *config.pad_token_id;
    }
    // Each expert's matrices are whole tensors in the state dict: expert e of N is held by the expert
    // rank e / (N / E) (Colossal-AI's EPMixtralSparseMoeBlock), then split over tp like a dense MLP.
    if (p.expert) t["expert"] = Json{{"index", *p.expert}, {"of", config.experts}};
    if (stages > 1) {
      if (p.layer) {
        t["layer"] = *p.layer;
      } else if (p.tied) {
        t["stage"] = Json::array({0, stages - 1});
      } else {
        t["stage"] = p.after_layers ? stages - 1 : 0;
      }
    }
    tensors.push_back(std::move(t));
  }
  // One tensor a line: a 300-tensor manifest stays readable and diffable.
  std::string text = "{\"seed\": " + std::to_string(options.seed) + ", \"parallel\": " + parallel.dump() + ",\n \"tensors\": [\n";
  for (std::size_t i = 0; i < tensors.size(); ++i) text += "  " + tensors[i].dump() + (i + 1 < tensors.size() ? ",\n" : "\n");
  text += " ]\n}\n";
  try {
    (void)parse_manifest(text, "<manifest>");  // every check a manifest gets (presets that split unevenly, ...)
  } catch (const Error& e) {
    throw Error(e.kind(), "the manifest made from " + std::string(source) + " is refused: " + e.what());
  }
  return text;
}

}  // namespace shardinit
