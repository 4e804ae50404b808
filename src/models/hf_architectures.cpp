// Names and shapes from the transformers modeling code (docs/models.md cites each):
//   Llama    src/transformers/models/llama/modeling_llama.py     LlamaModel, LlamaAttention, LlamaMLP
//   Mistral  src/transformers/models/mistral/modeling_mistral.py  (Llama's layout, no biases)
//   Qwen2    src/transformers/models/qwen2/modeling_qwen2.py      (q, k, v with bias; o without)
//   Mixtral  src/transformers/models/mixtral/modeling_mixtral.py  MixtralSparseMoeBlock: gate + experts.{e}.w1/w2/w3
//   GPT-2    src/transformers/models/gpt2/modeling_gpt2.py        GPT2Model, GPT2Attention, GPT2MLP (Conv1D)
// Buffers are not parameters (rotary inv_freq and GPT-2's causal mask are registered with
// persistent=False), and a tied lm_head.weight is left out, as save_pretrained leaves it out.

#include "models/hf_architectures.hpp"

namespace shardinit::detail {

namespace {

class Builder {
 public:
  std::vector<ModelParameter> parameters;

  ModelParameter& add(std::string name, std::vector<std::int64_t> shape, ParameterRole role) {
    ModelParameter p;
    p.name = std::move(name);
    p.shape = std::move(shape);
    p.role = role;
    p.layer = layer_;
    p.after_layers = after_;
    parameters.push_back(std::move(p));
    return parameters.back();
  }
  // A torch.nn.Linear(in, out, bias): weight (out, in), bias (out,).
  void linear(const std::string& prefix, std::int64_t in, std::int64_t out, bool bias, ParallelRole parallel) {
    ModelParameter& w = add(prefix + ".weight", {out, in}, ParameterRole::weight);
    w.parallel = parallel;
    w.in_features = in;
    w.out_features = out;
    if (!bias) return;
    ModelParameter& b = add(prefix + ".bias", {out}, ParameterRole::bias);
    b.parallel = parallel;
    b.in_features = in;
    b.out_features = out;
  }
  // transformers' Conv1D(nf = out, nx = in): weight (in, out), bias (out,); always with a bias.
  // `fused` parts side by side in the output features (c_attn's q, k, v).
  void conv1d(const std::string& prefix, std::int64_t in, std::int64_t out, bool residual, ParallelRole parallel,
              std::int64_t fused = 1) {
    ModelParameter& w = add(prefix + ".weight", {in, out}, ParameterRole::weight);
    w.in_features = in;
    w.out_features = out;
    w.stored_in_out = true;
    w.residual_projection = residual;
    w.parallel = parallel;
    w.fused_parts = fused;
    ModelParameter& b = add(prefix + ".bias", {out}, ParameterRole::bias);
    b.in_features = in;
    b.out_features = out;
    b.parallel = parallel;
    b.fused_parts = fused;
  }
  void rms_norm(const std::string& prefix, std::int64_t size) { add(prefix + ".weight", {size}, ParameterRole::norm_weight); }
  void layer_norm(const std::string& prefix, std::int64_t size) {
    add(prefix + ".weight", {size}, ParameterRole::norm_weight);
    add(prefix + ".bias", {size}, ParameterRole::norm_bias);
  }
  void in_layer(std::int64_t layer) { layer_ = layer; }
  void after_layers() {
    layer_.reset();
    after_ = true;
  }

 private:
  std::optional<std::int64_t> layer_;
  bool after_ = false;
};

std::vector<ModelParameter> llama_family(const HfConfig& c) {
  Builder b;
  const std::int64_t h = c.hidden_size, q = c.heads * c.head_dim, kv = c.kv_heads * c.head_dim;
  ModelParameter& embedding = b.add("model.embed_tokens.weight", {c.vocab_size, h}, ParameterRole::embedding);
  embedding.tied = c.tie_word_embeddings;
  for (std::int64_t n = 0; n < c.layers; ++n) {
    b.in_layer(n);
    const std::string x = "model.layers." + std::to_string(n) + ".";
    const bool qkv_bias = c.attention_bias || c.qkv_bias;
    b.linear(x + "self_attn.q_proj", h, q, qkv_bias, ParallelRole::column);
    b.linear(x + "self_attn.k_proj", h, kv, qkv_bias, ParallelRole::column);
    b.linear(x + "self_attn.v_proj", h, kv, qkv_bias, ParallelRole::column);
    b.linear(x + "self_attn.o_proj", q, h, c.attention_bias, ParallelRole::row);
    if (c.architecture == HfArchitecture::mixtral) {
      // MixtralSparseMoeBlock: the router, then each expert's MixtralBlockSparseTop2MLP (w1 gate, w2 down, w3 up).
      b.linear(x + "block_sparse_moe.gate", h, c.experts, false, ParallelRole::replicated);
      for (std::int64_t e = 0; e < c.experts; ++e) {
        const std::string expert = x + "block_sparse_moe.experts." + std::to_string(e) + ".";
        b.linear(expert + "w1", h, c.intermediate_size, false, ParallelRole::column);
        b.parameters.back().expert = e;
        b.linear(expert + "w2", c.intermediate_size, h, false, ParallelRole::row);
        b.parameters.back().expert = e;
        b.linear(expert + "w3", h, c.intermediate_size, false, ParallelRole::column);
        b.parameters.back().expert = e;
      }
    } else {
      b.linear(x + "mlp.gate_proj", h, c.intermediate_size, c.mlp_bias, ParallelRole::column);
      b.linear(x + "mlp.up_proj", h, c.intermediate_size, c.mlp_bias, ParallelRole::column);
      b.linear(x + "mlp.down_proj", c.intermediate_size, h, c.mlp_bias, ParallelRole::row);
    }
    b.rms_norm(x + "input_layernorm", h);
    b.rms_norm(x + "post_attention_layernorm", h);
  }
  b.after_layers();
  b.rms_norm("model.norm", h);
  if (!c.tie_word_embeddings) {
    ModelParameter& head = b.add("lm_head.weight", {c.vocab_size, h}, ParameterRole::lm_head);
    head.parallel = ParallelRole::column;
    head.in_features = h;
    head.out_features = c.vocab_size;
  }
  return b.parameters;
}

std::vector<ModelParameter> gpt2(const HfConfig& c) {
  Builder b;
  const std::int64_t n = c.hidden_size;
  ModelParameter& wte = b.add("transformer.wte.weight", {c.vocab_size, n}, ParameterRole::embedding);
  wte.tied = c.tie_word_embeddings;
  b.add("transformer.wpe.weight", {c.positions, n}, ParameterRole::position_embedding);
  for (std::int64_t layer = 0; layer < c.layers; ++layer) {
    b.in_layer(layer);
    const std::string x = "transformer.h." + std::to_string(layer) + ".";
    b.layer_norm(x + "ln_1", n);
    // Colossal-AI's GPT2 policy (colossalai/shardformer/policies/gpt2.py): c_attn and c_fc are
    // GPT2FusedLinearConv1D_Col (c_attn with split_sizes [n] * 3), both c_proj GPT2FusedLinearConv1D_Row.
    b.conv1d(x + "attn.c_attn", n, 3 * n, false, ParallelRole::column, 3);
    b.conv1d(x + "attn.c_proj", n, n, true, ParallelRole::row);
    b.layer_norm(x + "ln_2", n);
    b.conv1d(x + "mlp.c_fc", n, c.intermediate_size, false, ParallelRole::column);
    b.conv1d(x + "mlp.c_proj", c.intermediate_size, n, true, ParallelRole::row);
  }
  b.after_layers();
  b.layer_norm("transformer.ln_f", n);
  if (!c.tie_word_embeddings) {
    ModelParameter& head = b.add("lm_head.weight", {c.vocab_size, n}, ParameterRole::lm_head);
    head.parallel = ParallelRole::column;  // VocabParallelLMHead1D
    head.in_features = n;
    head.out_features = c.vocab_size;
  }
  return b.parameters;
}

}  // namespace

std::vector<ModelParameter> hf_parameters(const HfConfig& config) {
  return config.architecture == HfArchitecture::gpt2 ? gpt2(config) : llama_family(config);
}

}  // namespace shardinit::detail
