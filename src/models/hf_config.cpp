#include "models/hf_config.hpp"

#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "shardinit/error.hpp"
#include "shardinit/models/hf_model.hpp"
#include "util/printable.hpp"
#include "util/strict_json.hpp"

namespace shardinit {

const std::vector<std::string>& supported_hf_architectures() {
  static const std::vector<std::string> names{"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                              "MixtralForCausalLM", "GPT2LMHeadModel"};
  return names;
}

namespace detail {

namespace {

using nlohmann::json;

struct Known {
  const char* architecture;
  const char* model_type;
  HfArchitecture kind;
};
constexpr std::array<Known, 5> kKnown{{{"LlamaForCausalLM", "llama", HfArchitecture::llama},
                                       {"MistralForCausalLM", "mistral", HfArchitecture::mistral},
                                       {"Qwen2ForCausalLM", "qwen2", HfArchitecture::qwen2},
                                       {"MixtralForCausalLM", "mixtral", HfArchitecture::mixtral},
                                       {"GPT2LMHeadModel", "gpt2", HfArchitecture::gpt2}}};

std::string supported_list() {
  std::string list;
  for (const auto& name : supported_hf_architectures()) list += (list.empty() ? "" : ", ") + name;
  return list;
}

// Reads fields of the config's top-level object, with messages that name the key, the value and
// where it is.
class Fields {
 public:
  Fields(std::string_view text, std::string_view source) : text_(text), source_(source) {
    StrictJson parsed = parse_strict_json(text, source);
    if (parsed.duplicate) fail(parsed.duplicate->key, "appears twice");
    document_ = std::move(parsed.document);
    if (!document_.is_object()) {
      throw Error(ErrorKind::invalid_argument, std::string(source) + ": a config.json must be a JSON object, not " + brief(document_));
    }
  }

  [[nodiscard]] const json* find(const char* key) const {
    const auto it = document_.find(key);
    return it == document_.end() || it->is_null() ? nullptr : &*it;
  }

  // "SOURCE: "KEY" WHAT: VALUE (line L, column C)".
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    const json* value = find(key.c_str());
    fail_saying(key, value != nullptr ? what + ": " + brief(*value) : what);
  }
  // The same without the value, for a `what` that names it better than brief() can.
  [[noreturn]] void fail_saying(const std::string& key, const std::string& what) const {
    throw Error(ErrorKind::invalid_argument,
                std::string(source_) + ": \"" + printable(key) + "\" " + what + " (" + locate(text_, {key}) + ")");
  }

  // A positive integer: the given one, or `fallback` when absent (nullopt: required).
  std::int64_t positive(const char* key, std::optional<std::int64_t> fallback) const {
    const json* value = find(key);
    if (value == nullptr) {
      if (!fallback) fail(key, "is required");
      return *fallback;
    }
    if (!value->is_number_integer() || value->get<std::int64_t>() <= 0 ||
        (value->is_number_unsigned() && value->get<std::uint64_t>() > std::uint64_t{1} << 40)) {
      fail(key, "must be a positive integer (at most 2^40)");
    }
    return value->get<std::int64_t>();
  }
  std::optional<std::int64_t> optional_integer(const char* key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number_integer() || (value->is_number_unsigned() && value->get<std::uint64_t>() > std::uint64_t{1} << 40) ||
        (!value->is_number_unsigned() && value->get<std::int64_t>() < -(std::int64_t{1} << 40))) {
      fail(key, "must be an integer");
    }
    return value->get<std::int64_t>();
  }
  bool boolean(const char* key, bool fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) fail(key, "must be true or false");
    return value->get<bool>();
  }
  double positive_real(const char* key, double fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number() || !std::isfinite(value->get<double>()) || value->get<double>() <= 0) {
      fail(key, "must be a positive number");
    }
    return value->get<double>();
  }

  [[nodiscard]] const json& document() const noexcept { return document_; }

 private:
  std::string_view text_;
  std::string_view source_;
  json document_;
};

HfArchitecture architecture_of(const Fields& fields, std::string& name) {
  if (const json* list = fields.find("architectures")) {
    if (!list->is_array() || list->empty() || !(*list)[0].is_string()) {
      fields.fail("architectures", "must be a non-empty list of class names");
    }
    name = (*list)[0].get<std::string>();
    for (const Known& k : kKnown) {
      if (name == k.architecture) return k.kind;
    }
    fields.fail_saying("architectures", "names \"" + printable(name) + "\", an architecture shardinit does not know (supported: " +
                                            supported_list() + ")");
  }
  if (const json* type = fields.find("model_type")) {
    if (type->is_string()) {
      for (const Known& k : kKnown) {
        if (type->get<std::string>() == k.model_type) {
          name = k.architecture;
          return k.kind;
        }
      }
    }
    fields.fail("model_type", "names a model type shardinit does not know (supported: " + supported_list() + ")");
  }
  fields.fail("architectures", "is required (or \"model_type\"); supported: " + supported_list());
}

// torch_dtype (transformers < 4.56) or dtype (its new name), as PyTorch names the type.
std::optional<DType> dtype_of(const Fields& fields) {
  for (const char* key : {"torch_dtype", "dtype"}) {
    const json* value = fields.find(key);
    if (value == nullptr) continue;
    static constexpr std::pair<const char*, DType> kNames[] = {
        {"float32", DType::f32}, {"float", DType::f32},  {"bfloat16", DType::bf16},
        {"float16", DType::f16}, {"half", DType::f16},   {"float64", DType::f64}, {"double", DType::f64}};
    if (value->is_string()) {
      const std::string text = value->get<std::string>();
      for (const auto& [torch_name, dtype] : kNames) {
        if (text == torch_name || text == "torch." + std::string(torch_name)) return dtype;
      }
    }
    fields.fail(key, "must be float32, bfloat16, float16 or float64");
  }
  return std::nullopt;
}

}  // namespace

HfConfig read_hf_config(std::string_view text, std::string_view source) {
  const Fields f(text, source);
  HfConfig c;
  c.architecture = architecture_of(f, c.architecture_name);
  c.initializer_range = f.positive_real("initializer_range", 0.02);
  c.dtype = dtype_of(f);
  if (c.architecture == HfArchitecture::gpt2) {
    // GPT2Config's defaults (configuration_gpt2.py); tie_word_embeddings is PretrainedConfig's (true).
    c.vocab_size = f.positive("vocab_size", 50257);
    c.positions = f.positive("n_positions", 1024);
    c.hidden_size = f.positive("n_embd", 768);
    c.layers = f.positive("n_layer", 12);
    c.heads = f.positive("n_head", 12);
    c.intermediate_size = f.positive("n_inner", 4 * c.hidden_size);
    c.tie_word_embeddings = f.boolean("tie_word_embeddings", true);
    if (c.hidden_size % c.heads != 0) f.fail("n_embd", "must be divisible by n_head (" + std::to_string(c.heads) + ")");
    c.kv_heads = c.heads;
    c.head_dim = c.hidden_size / c.heads;
    return c;
  }
  // LlamaConfig, MistralConfig, Qwen2Config, MixtralConfig defaults (configuration_*.py).
  const bool qwen2 = c.architecture == HfArchitecture::qwen2;
  const bool llama = c.architecture == HfArchitecture::llama;
  c.vocab_size = f.positive("vocab_size", qwen2 ? 151936 : 32000);
  c.hidden_size = f.positive("hidden_size", 4096);
  c.intermediate_size = f.positive("intermediate_size", llama ? 11008 : qwen2 ? 22016 : 14336);
  c.layers = f.positive("num_hidden_layers", 32);
  c.heads = f.positive("num_attention_heads", 32);
  c.kv_heads = f.positive("num_key_value_heads", llama || qwen2 ? c.heads : 8);
  if (c.heads % c.kv_heads != 0) {
    f.fail("num_key_value_heads", "must divide num_attention_heads (" + std::to_string(c.heads) + ")");
  }
  if (f.find("head_dim") != nullptr) {
    c.head_dim = f.positive("head_dim", std::nullopt);
  } else {
    if (c.hidden_size % c.heads != 0) {
      f.fail("hidden_size", "must be divisible by num_attention_heads (" + std::to_string(c.heads) + ") when head_dim is not given");
    }
    c.head_dim = c.hidden_size / c.heads;
  }
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  if (llama) {
    c.attention_bias = f.boolean("attention_bias", false);
    c.mlp_bias = f.boolean("mlp_bias", false);
  }
  c.qkv_bias = qwen2;
  if (c.architecture == HfArchitecture::mixtral) c.experts = f.positive("num_local_experts", 8);
  c.pad_token_id = f.optional_integer("pad_token_id");
  if (c.pad_token_id && (*c.pad_token_id >= c.vocab_size || *c.pad_token_id < -c.vocab_size)) {
    f.fail("pad_token_id", "must be a row of the embedding, in [-vocab_size, vocab_size) with vocab_size " +
                               std::to_string(c.vocab_size) + " (torch.nn.Embedding's padding_idx)");
  }
  return c;
}

}  // namespace detail
}  // namespace shardinit
