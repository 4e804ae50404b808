// Manifests made from Hugging Face configs (src/models, docs/models.md): the names and shapes of each
// architecture's state dict against lists written by hand from the transformers modeling files, the
// parameter counts of the published configs against their published totals, the init rules, the
// layouts and stages, and the errors.

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "shardinit/error.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/models/hf_model.hpp"

namespace shardinit {
namespace {

using nlohmann::json;
using Shapes = std::vector<std::pair<std::string, std::vector<std::int64_t>>>;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) ADD_FAILURE() << "cannot read " << path;
  return text.str();
}

std::string example_config(const std::string& model) { return read_text(std::string(SHARDINIT_EXAMPLES_DIR) + "/hf/" + model + "/config.json"); }

json manifest_of(const std::string& config, const HfManifestOptions& options = {}) {
  return json::parse(manifest_from_hf_config(config, options, "config.json"));
}

Shapes shapes_of(const json& manifest) {
  Shapes shapes;
  for (const json& t : manifest["tensors"]) shapes.emplace_back(t["name"], t["shape"].get<std::vector<std::int64_t>>());
  return shapes;
}

const json& tensor(const json& manifest, const std::string& name) {
  for (const json& t : manifest["tensors"]) {
    if (t["name"] == name) return t;
  }
  ADD_FAILURE() << "no tensor " << name;
  static const json none;
  return none;
}

// Llama layer n of the tiny config (hidden 64, 8 heads of 8, 4 key/value heads, intermediate 160):
// LlamaAttention's q_proj (heads*head_dim, hidden), k/v_proj (kv_heads*head_dim, hidden), o_proj;
// LlamaMLP's gate/up (intermediate, hidden), down (hidden, intermediate); two LlamaRMSNorm weights.
Shapes llama_layer(int n, std::int64_t h, std::int64_t q, std::int64_t kv, std::int64_t i, bool qkv_bias = false) {
  const std::string x = "model.layers." + std::to_string(n) + ".";
  Shapes s{{x + "self_attn.q_proj.weight", {q, h}}};
  if (qkv_bias) s.push_back({x + "self_attn.q_proj.bias", {q}});
  s.push_back({x + "self_attn.k_proj.weight", {kv, h}});
  if (qkv_bias) s.push_back({x + "self_attn.k_proj.bias", {kv}});
  s.push_back({x + "self_attn.v_proj.weight", {kv, h}});
  if (qkv_bias) s.push_back({x + "self_attn.v_proj.bias", {kv}});
  s.insert(s.end(), {{x + "self_attn.o_proj.weight", {h, q}},
                     {x + "mlp.gate_proj.weight", {i, h}},
                     {x + "mlp.up_proj.weight", {i, h}},
                     {x + "mlp.down_proj.weight", {h, i}},
                     {x + "input_layernorm.weight", {h}},
                     {x + "post_attention_layernorm.weight", {h}}});
  return s;
}

TEST(HfManifest, LlamaWithGroupedQueryAttentionAndAnUntiedHead) {
  Shapes expected{{"model.embed_tokens.weight", {256, 64}}};
  for (int n = 0; n < 4; ++n) {
    const Shapes layer = llama_layer(n, 64, 64, 32, 160);
    expected.insert(expected.end(), layer.begin(), layer.end());
  }
  expected.push_back({"model.norm.weight", {64}});
  expected.push_back({"lm_head.weight", {256, 64}});
  const json m = manifest_of(example_config("tiny-llama"));
  EXPECT_EQ(shapes_of(m), expected);
  for (const json& t : m["tensors"]) EXPECT_EQ(t["dtype"], "bf16") << t["name"];  // torch_dtype bfloat16
}

TEST(HfManifest, Qwen2HasQkvBiasesAndATiedEmbedding) {
  Shapes expected{{"model.embed_tokens.weight", {200, 64}}};
  for (int n = 0; n < 2; ++n) {
    const Shapes layer = llama_layer(n, 64, 64, 32, 128, true);  // o_proj has no bias
    expected.insert(expected.end(), layer.begin(), layer.end());
  }
  expected.push_back({"model.norm.weight", {64}});  // tie_word_embeddings: no lm_head.weight
  EXPECT_EQ(shapes_of(manifest_of(example_config("tiny-qwen2"))), expected);
}

TEST(HfManifest, MistralTakesAnExplicitHeadDim) {
  // head_dim 32 with 4 heads: q is (128, 64) and o (64, 128), not hidden x hidden.
  Shapes expected{{"model.embed_tokens.weight", {128, 64}}};
  for (int n = 0; n < 2; ++n) {
    const Shapes layer = llama_layer(n, 64, 128, 64, 96);
    expected.insert(expected.end(), layer.begin(), layer.end());
  }
  expected.push_back({"model.norm.weight", {64}});
  expected.push_back({"lm_head.weight", {128, 64}});
  const json m = manifest_of(example_config("tiny-mistral"));
  EXPECT_EQ(shapes_of(m), expected);
  for (const json& t : m["tensors"]) EXPECT_EQ(t["dtype"], "f32") << t["name"];  // no torch_dtype
}

TEST(HfManifest, MixtralHasARouterAndExperts) {
  Shapes expected{{"model.embed_tokens.weight", {100, 32}}};
  for (int n = 0; n < 2; ++n) {
    const std::string x = "model.layers." + std::to_string(n) + ".";
    expected.insert(expected.end(), {{x + "self_attn.q_proj.weight", {32, 32}},
                                     {x + "self_attn.k_proj.weight", {16, 32}},
                                     {x + "self_attn.v_proj.weight", {16, 32}},
                                     {x + "self_attn.o_proj.weight", {32, 32}},
                                     {x + "block_sparse_moe.gate.weight", {4, 32}}});
    for (int e = 0; e < 4; ++e) {
      const std::string ex = x + "block_sparse_moe.experts." + std::to_string(e) + ".";
      expected.insert(expected.end(), {{ex + "w1.weight", {64, 32}}, {ex + "w2.weight", {32, 64}}, {ex + "w3.weight", {64, 32}}});
    }
    expected.insert(expected.end(), {{x + "input_layernorm.weight", {32}}, {x + "post_attention_layernorm.weight", {32}}});
  }
  expected.push_back({"model.norm.weight", {32}});
  expected.push_back({"lm_head.weight", {100, 32}});
  EXPECT_EQ(shapes_of(manifest_of(example_config("tiny-mixtral"))), expected);
}

TEST(HfManifest, Gpt2StoresConv1dWeightsInByOutAndTiesItsHead) {
  Shapes expected{{"transformer.wte.weight", {100, 32}}, {"transformer.wpe.weight", {64, 32}}};
  for (int n = 0; n < 2; ++n) {
    const std::string x = "transformer.h." + std::to_string(n) + ".";
    expected.insert(expected.end(), {{x + "ln_1.weight", {32}},
                                     {x + "ln_1.bias", {32}},
                                     {x + "attn.c_attn.weight", {32, 96}},
                                     {x + "attn.c_attn.bias", {96}},
                                     {x + "attn.c_proj.weight", {32, 32}},
                                     {x + "attn.c_proj.bias", {32}},
                                     {x + "ln_2.weight", {32}},
                                     {x + "ln_2.bias", {32}},
                                     {x + "mlp.c_fc.weight", {32, 128}},
                                     {x + "mlp.c_fc.bias", {128}},
                                     {x + "mlp.c_proj.weight", {128, 32}},
                                     {x + "mlp.c_proj.bias", {32}}});
  }
  expected.push_back({"transformer.ln_f.weight", {32}});
  expected.push_back({"transformer.ln_f.bias", {32}});
  EXPECT_EQ(shapes_of(manifest_of(example_config("tiny-gpt2"))), expected);
}

// The published totals of each model (the model cards' parameter counts, exact where published).
TEST(HfManifest, PublishedConfigsHaveTheirPublishedParameterCounts) {
  const std::pair<const char*, std::int64_t> models[] = {
      {"llama-3-8b", 8'030'261'248},        {"mistral-7b-v0.1", 7'241'732'096}, {"mixtral-8x7b-v0.1", 46'702'792'704},
      {"gpt2", 124'439'808},                {"qwen2-0.5b", 494'032'768},        {"tinyllama-1.1b", 1'100'048'384}};
  for (const auto& [model, total] : models) {
    const json m = manifest_of(example_config(model));
    std::int64_t count = 0;
    for (const json& t : m["tensors"]) {
      std::int64_t n = 1;
      for (const json& d : t["shape"]) n *= d.get<std::int64_t>();
      count += n;
    }
    EXPECT_EQ(count, total) << model;
  }
}

TEST(HfManifest, HfInitRulesFollowEachArchitecturesInitWeights) {
  const json llama = manifest_of(example_config("tiny-llama"));
  const json normal = {{"fn", "normal"}, {"mean", 0}, {"std", 0.02}};
  EXPECT_EQ(tensor(llama, "model.embed_tokens.weight")["init"], normal);
  EXPECT_EQ(tensor(llama, "model.embed_tokens.weight")["padding_idx"], 0);  // pad_token_id 0
  EXPECT_EQ(tensor(llama, "model.layers.1.mlp.down_proj.weight")["init"], normal);
  EXPECT_EQ(tensor(llama, "lm_head.weight")["init"], normal);
  EXPECT_EQ(tensor(llama, "model.norm.weight")["init"], json({{"fn", "ones"}}));
  const json qwen2 = manifest_of(example_config("tiny-qwen2"));
  EXPECT_EQ(tensor(qwen2, "model.layers.0.self_attn.k_proj.bias")["init"], json({{"fn", "zeros"}}));
  EXPECT_FALSE(tensor(qwen2, "model.embed_tokens.weight").contains("padding_idx"));  // no pad_token_id
  const json gpt2 = manifest_of(example_config("tiny-gpt2"));
  // c_proj weights (attention and MLP): initializer_range / sqrt(2 n_layer) = 0.02 / 2.
  for (const char* name : {"transformer.h.0.attn.c_proj.weight", "transformer.h.1.mlp.c_proj.weight"}) {
    EXPECT_EQ(tensor(gpt2, name)["init"]["std"].get<double>(), 0.02 / std::sqrt(4.0)) << name;
  }
  EXPECT_EQ(tensor(gpt2, "transformer.h.0.attn.c_attn.weight")["init"], normal);
  EXPECT_EQ(tensor(gpt2, "transformer.h.0.mlp.c_proj.bias")["init"], json({{"fn", "zeros"}}));
  EXPECT_EQ(tensor(gpt2, "transformer.ln_f.bias")["init"], json({{"fn", "zeros"}}));
  EXPECT_EQ(tensor(gpt2, "transformer.wpe.weight")["init"], normal);
  const json real_gpt2 = manifest_of(example_config("gpt2"));  // 12 layers: 0.02 / sqrt(24)
  EXPECT_EQ(tensor(real_gpt2, "transformer.h.11.mlp.c_proj.weight")["init"]["std"].get<double>(), 0.02 / std::sqrt(24.0));
}

TEST(HfManifest, ColossalInitRulesUseTheGlobalFans) {
  HfManifestOptions options;
  options.init = ModelInit::colossal;
  options.tensor_parallel = 2;
  const json m = manifest_of(example_config("tiny-qwen2"), options);
  const json& down = tensor(m, "model.layers.0.mlp.down_proj.weight");  // (64, 128): in 128, out 64
  EXPECT_EQ(down["init"], json({{"fn", "kaiming_uniform"}, {"a", std::sqrt(5.0)}, {"mode", "fan_in"}, {"nonlinearity", "leaky_relu"}}));
  EXPECT_EQ(down["fan_in"], 128);
  EXPECT_EQ(down["fan_out"], 64);
  const json& bias = tensor(m, "model.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(bias["init"], json({{"fn", "xavier_uniform"}, {"a", 1}, {"scale", 1}}));
  EXPECT_EQ(bias["fan_in"], 64);
  EXPECT_EQ(tensor(m, "model.embed_tokens.weight")["init"], json({{"fn", "normal"}, {"mean", 0}, {"std", 1.0}}));
  EXPECT_EQ(tensor(m, "model.norm.weight")["init"], json({{"fn", "ones"}}));
  // VocabParallelEmbedding1D zeroes the padding row too (tiny-llama: pad_token_id 0).
  EXPECT_EQ(tensor(manifest_of(example_config("tiny-llama"), options), "model.embed_tokens.weight")["padding_idx"], 0);
  // GPT-2's Conv1D weights are (in, out): fan_in is the first dimension.
  options.tensor_parallel = 1;
  const json g = manifest_of(example_config("tiny-gpt2"), options);
  EXPECT_EQ(tensor(g, "transformer.h.0.mlp.c_fc.weight")["fan_in"], 32);
  EXPECT_EQ(tensor(g, "transformer.h.0.mlp.c_fc.weight")["fan_out"], 128);
}

TEST(HfManifest, LayoutsAndStagesFollowTheTensorParallelPolicies) {
  HfManifestOptions options;
  options.tensor_parallel = 2;
  options.pipeline_parallel = 2;
  options.data_parallel = 1;
  const json m = manifest_of(example_config("tiny-llama"), options);
  EXPECT_EQ(m["parallel"], json::parse(R"({"tensor": {"mode": "1d", "size": 2}, "pipeline": {"size": 2, "layers": 4, "partition": "uniform"}, "data": 1})"));
  const std::pair<const char*, const char*> layouts[] = {
      {"model.embed_tokens.weight", "vocab_embedding"}, {"model.layers.0.self_attn.q_proj.weight", "linear_col"},
      {"model.layers.0.self_attn.k_proj.weight", "linear_col"}, {"model.layers.0.self_attn.o_proj.weight", "linear_row"},
      {"model.layers.0.mlp.up_proj.weight", "linear_col"}, {"model.layers.0.mlp.down_proj.weight", "linear_row"},
      {"model.layers.0.input_layernorm.weight", "replicate"}, {"model.norm.weight", "replicate"}, {"lm_head.weight", "linear_col"}};
  for (const auto& [name, layout] : layouts) EXPECT_EQ(tensor(m, name)["layout"], layout) << name;
  EXPECT_EQ(tensor(m, "model.embed_tokens.weight")["stage"], 0);
  EXPECT_EQ(tensor(m, "model.layers.3.mlp.up_proj.weight")["layer"], 3);
  EXPECT_EQ(tensor(m, "model.norm.weight")["stage"], 1);
  EXPECT_EQ(tensor(m, "lm_head.weight")["stage"], 1);
  const json tied = manifest_of(example_config("tiny-qwen2"), options);  // the tied embedding: first and last stage
  EXPECT_EQ(tensor(tied, "model.embed_tokens.weight")["stage"], json::array({0, 1}));
  EXPECT_EQ(tensor(tied, "model.layers.0.self_attn.q_proj.bias")["layout"], "linear_col_bias");
  const json moe = manifest_of(example_config("tiny-mixtral"), options);
  EXPECT_EQ(tensor(moe, "model.layers.0.block_sparse_moe.gate.weight")["layout"], "replicate");
  EXPECT_EQ(tensor(moe, "model.layers.0.block_sparse_moe.experts.3.w2.weight")["layout"], "linear_row");
  EXPECT_EQ(tensor(moe, "model.layers.0.block_sparse_moe.experts.3.w3.weight")["layout"], "linear_col");
  // Every manifest made loads as a manifest and puts a rank's tensors on its stage.
  const Manifest loaded = parse_manifest(manifest_from_hf_config(example_config("tiny-llama"), options, "config.json"));
  EXPECT_EQ(loaded.tensors.size(), m["tensors"].size());
}

// --ep: Mixtral's experts over the expert axis, as Colossal-AI's EPMixtralSparseMoeBlock deals them
// out (colossalai/shardformer/modeling/mixtral.py): expert e of N on expert rank e / (N / ep), then
// split over tp like the dense MLP (w1, w3 Linear1D_Col; w2 Linear1D_Row).
TEST(HfManifest, MixtralExpertsLiveOnTheirExpertRank) {
  HfManifestOptions options;
  options.tensor_parallel = 2;
  options.expert_parallel = 2;
  options.data_parallel = 2;
  const json m = manifest_of(example_config("tiny-mixtral"), options);  // 4 experts
  EXPECT_EQ(m["parallel"]["expert"], 2);
  for (int e = 0; e < 4; ++e) {
    for (const char* w : {"w1", "w2", "w3"}) {
      const std::string name = "model.layers.1.block_sparse_moe.experts." + std::to_string(e) + "." + w + ".weight";
      EXPECT_EQ(tensor(m, name)["expert"], json::parse(R"({"index": )" + std::to_string(e) + R"(, "of": 4})")) << name;
    }
  }
  EXPECT_FALSE(tensor(m, "model.layers.1.block_sparse_moe.gate.weight").contains("expert"));  // the router is dense
  // On the job's mesh [edp 1, ep 2, pp 1, tp 2] (rank = 2 ep + tp): experts 0-1 on ranks 0-1, 2-3 on ranks 2-3.
  const Manifest loaded = parse_manifest(manifest_from_hf_config(example_config("tiny-mixtral"), options, "config.json"));
  const ProcessMesh mesh = manifest_mesh(loaded, 4);
  for (const ManifestTensor& t : loaded.tensors) {
    const auto at = t.name.find("experts.");
    for (int rank = 0; rank < 4; ++rank) {
      const bool want = at == std::string::npos || (t.name[at + 8] - '0') / 2 == rank / 2;
      EXPECT_EQ(holds(t.layout, mesh, rank), want) << t.name << " on rank " << rank;
    }
  }
  // Values: the same canonical spec as without expert parallelism.
  EXPECT_EQ(manifest_digest(loaded), manifest_digest(parse_manifest(manifest_from_hf_config(example_config("tiny-mixtral"), {}, "config.json"))));
}

// GPT-2 under Colossal-AI's policy (colossalai/shardformer/policies/gpt2.py): Conv1D weights are
// (in, out), so GPT2FusedLinearConv1D_Col splits dimension 1 and _Row dimension 0; c_attn is q, k and
// v side by side, each split over tp (split_fused_qkv_in_gpt2_style: [Q1, Q2, K1, K2, V1, V2] ->
// [Q1, K1, V1], colossalai/shardformer/layer/qkv_fused_linear.py).
TEST(HfManifest, Gpt2ConvolutionsSplitTheirStoredDimensionsAndFuseQkv) {
  HfManifestOptions options;
  options.tensor_parallel = 4;
  const json m = manifest_of(example_config("tiny-gpt2"), options);  // n_embd 32, n_inner 128
  const std::string x = "transformer.h.1.";
  EXPECT_EQ(tensor(m, x + "attn.c_attn.weight")["layout"], json::parse(R"({"shard": {"1": ["tp"]}})"));
  EXPECT_EQ(tensor(m, x + "attn.c_attn.weight")["fused"], json::parse(R"({"dim": 1, "parts": 3})"));
  EXPECT_EQ(tensor(m, x + "attn.c_attn.bias")["layout"], "linear_col_bias");
  EXPECT_EQ(tensor(m, x + "attn.c_attn.bias")["fused"], json::parse(R"({"dim": 0, "parts": 3})"));
  EXPECT_EQ(tensor(m, x + "attn.c_proj.weight")["layout"], json::parse(R"({"shard": {"0": ["tp"]}})"));
  EXPECT_EQ(tensor(m, x + "attn.c_proj.bias")["layout"], "linear_row_bias");
  EXPECT_EQ(tensor(m, x + "mlp.c_fc.weight")["layout"], json::parse(R"({"shard": {"1": ["tp"]}})"));
  EXPECT_FALSE(tensor(m, x + "mlp.c_fc.weight").contains("fused"));
  EXPECT_EQ(tensor(m, x + "mlp.c_proj.weight")["layout"], json::parse(R"({"shard": {"0": ["tp"]}})"));
  EXPECT_EQ(tensor(m, "transformer.wte.weight")["layout"], "vocab_embedding");
  EXPECT_EQ(tensor(m, "transformer.wpe.weight")["layout"], "replicate");
  // Rank 1 of 4 holds columns [8, 16) of each of q, k and v: a box of c_attn's space (32, 3, 32).
  const Manifest loaded = parse_manifest(manifest_from_hf_config(example_config("tiny-gpt2"), options, "config.json"));
  const ProcessMesh mesh = manifest_mesh(loaded, 4);
  for (const ManifestTensor& t : loaded.tensors) {
    if (t.name != x + "attn.c_attn.weight") continue;
    const Holding h = local_holding(t.shape, t.layout, mesh, 1);
    EXPECT_EQ(h.space, (Shape{32, 3, 32}));
    EXPECT_EQ(h.box.start, (std::vector<Index>{0, 0, 8}));
    EXPECT_EQ(h.box.extent, (std::vector<Index>{32, 3, 8}));
    EXPECT_EQ(h.local_shape(t.layout), (Shape{32, 24}));
  }
}

TEST(HfManifest, TheLayoutsNeverChangeTheValues) {
  // The canonical spec (what decides every value) is the same for every tp and pp.
  HfManifestOptions split;
  split.tensor_parallel = 2;
  split.pipeline_parallel = 2;
  for (const char* model : {"tiny-llama", "tiny-qwen2", "tiny-mixtral", "tiny-gpt2"}) {
    const Manifest one = parse_manifest(manifest_from_hf_config(example_config(model), {}, "config.json"));
    const Manifest two = parse_manifest(manifest_from_hf_config(example_config(model), split, "config.json"));
    EXPECT_EQ(manifest_digest(one), manifest_digest(two)) << model;
  }
}

std::string error_of(const std::string& config, const HfManifestOptions& options = {}) {
  try {
    (void)manifest_from_hf_config(config, options, "config.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << config;
  return "";
}

TEST(HfManifest, BadConfigsAreErrorsThatNameTheValue) {
  using testing::HasSubstr;
  EXPECT_THAT(error_of(R"({"architectures": ["BertModel"]})"),
              HasSubstr("\"architectures\" names \"BertModel\", an architecture shardinit does not know (supported: "
                        "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, MixtralForCausalLM, GPT2LMHeadModel) (line 1"));
  EXPECT_THAT(error_of(R"({"model_type": "bert"})"), HasSubstr("\"model_type\" names a model type shardinit does not know"));
  EXPECT_THAT(error_of(R"({"hidden_size": 64})"), HasSubstr("\"architectures\" is required (or \"model_type\")"));
  EXPECT_THAT(error_of(R"({"model_type": "llama", "hidden_size": -64})"), HasSubstr("\"hidden_size\" must be a positive integer (at most 2^40): -64 (line 1"));
  EXPECT_THAT(error_of(R"({"model_type": "llama", "hidden_size": 64.5})"), HasSubstr("\"hidden_size\" must be a positive integer"));
  EXPECT_THAT(error_of(R"({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 6})"),
              HasSubstr("\"hidden_size\" must be divisible by num_attention_heads (6) when head_dim is not given: 64"));
  EXPECT_THAT(error_of(R"({"model_type": "llama", "num_attention_heads": 32, "num_key_value_heads": 6})"),
              HasSubstr("\"num_key_value_heads\" must divide num_attention_heads (32): 6"));
  EXPECT_THAT(error_of(R"({"model_type": "llama", "vocab_size": 100, "pad_token_id": 100})"),
              HasSubstr("\"pad_token_id\" must be a row of the embedding, in [-vocab_size, vocab_size) with vocab_size 100"));
  EXPECT_THAT(error_of(R"({"model_type": "llama", "torch_dtype": "int8"})"), HasSubstr("\"torch_dtype\" must be float32, bfloat16, float16 or float64: \"int8\""));
  EXPECT_THAT(error_of(R"({"model_type": "llama", "tie_word_embeddings": 1})"), HasSubstr("\"tie_word_embeddings\" must be true or false: 1"));
  EXPECT_THAT(error_of(R"({"model_type": "llama", "model_type": "gpt2"})"), HasSubstr("\"model_type\" appears twice"));
  EXPECT_THAT(error_of(R"([1, 2])"), HasSubstr("config.json: a config.json must be a JSON object, not an array of 2 values"));
  try {
    (void)manifest_from_hf_config("{\"model_type\": ", {}, "config.json");
    ADD_FAILURE() << "malformed JSON accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::parse);
  }
}

TEST(HfManifest, LayoutsTheModelCannotTakeAreErrors) {
  using testing::HasSubstr;
  HfManifestOptions tp;
  tp.tensor_parallel = 3;
  EXPECT_THAT(error_of(example_config("tiny-llama"), tp), HasSubstr("num_attention_heads 8 is not divisible by the tensor-parallel size 3"));
  tp.tensor_parallel = 8;  // 8 heads, 4 key/value heads
  EXPECT_THAT(error_of(example_config("tiny-llama"), tp), HasSubstr("num_key_value_heads 4 is not divisible by the tensor-parallel size 8"));
  tp.tensor_parallel = 4;
  EXPECT_THAT(error_of(R"({"model_type": "gpt2", "n_embd": 32, "n_head": 4, "n_inner": 30, "n_layer": 1})", tp),
              HasSubstr("n_inner 30 is not divisible by the tensor-parallel size 4"));
  HfManifestOptions ep;
  ep.expert_parallel = 2;
  EXPECT_THAT(error_of(example_config("tiny-llama"), ep), HasSubstr("--ep 2 needs a mixture of experts (LlamaForCausalLM has no experts"));
  ep.expert_parallel = 3;
  EXPECT_THAT(error_of(example_config("tiny-mixtral"), ep), HasSubstr("num_local_experts 4 is not divisible by the expert parallel size 3"));
  ep.expert_parallel = 2;
  ep.data_parallel = 3;
  EXPECT_THAT(error_of(example_config("tiny-mixtral"), ep), HasSubstr("--ep 2 must divide the data-parallel size 3 (--dp)"));
  ep.expert_parallel = 0;
  EXPECT_THAT(error_of(example_config("tiny-mixtral"), ep), HasSubstr("sizes must be at least 1"));
  HfManifestOptions pp;
  pp.pipeline_parallel = 5;
  EXPECT_THAT(error_of(example_config("tiny-llama"), pp), HasSubstr("--pp 5 stages for 4 layers"));
  // A vocabulary the tensor-parallel size does not divide: the manifest's own check, named.
  tp.tensor_parallel = 2;
  const std::string odd_vocab = R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                                    "num_attention_heads": 4, "vocab_size": 101})";
  EXPECT_THAT(error_of(odd_vocab, tp), HasSubstr("the manifest made from config.json is refused"));
}

}  // namespace
}  // namespace shardinit
