#pragma once
// A Hugging Face config.json, read as the transformers configuration classes read it: the fields
// the state dict's names and shapes depend on, with the classes' defaults where a field is absent
// (docs/models.md lists them, from src/transformers/models/*/configuration_*.py).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shardinit/dtype.hpp"

namespace shardinit::detail {

enum class HfArchitecture { llama, mistral, qwen2, mixtral, gpt2 };

struct HfConfig {
  HfArchitecture architecture = HfArchitecture::llama;
  std::string architecture_name;  // as "architectures" names it, e.g. "LlamaForCausalLM"
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;         // GPT-2: n_embd
  std::int64_t intermediate_size = 0;   // GPT-2: n_inner, else 4 * n_embd
  std::int64_t layers = 0;              // num_hidden_layers; GPT-2: n_layer
  std::int64_t heads = 0;               // num_attention_heads; GPT-2: n_head
  std::int64_t kv_heads = 0;            // num_key_value_heads (default: heads)
  std::int64_t head_dim = 0;            // head_dim (default: hidden_size / heads)
  std::int64_t positions = 0;           // GPT-2: n_positions (the learned position embedding)
  std::int64_t experts = 0;             // Mixtral: num_local_experts
  bool tie_word_embeddings = false;
  bool attention_bias = false;          // q, k, v, o biases (Llama's attention_bias)
  bool qkv_bias = false;                // q, k, v biases only (Qwen2)
  bool mlp_bias = false;                // gate, up, down biases (Llama's mlp_bias)
  double initializer_range = 0.02;
  std::optional<std::int64_t> pad_token_id;  // the embedding's padding_idx (Llama family)
  std::optional<DType> dtype;                // torch_dtype (or dtype), when the config gives one
};

// Throws Error(parse) for malformed JSON and Error(invalid_argument) "SOURCE: KEY ...: VALUE (line L,
// column C)" for a missing, mistyped or out-of-range field, and for an architecture this reader does
// not know (listing the supported ones).
[[nodiscard]] HfConfig read_hf_config(std::string_view text, std::string_view source);

}  // namespace shardinit::detail
