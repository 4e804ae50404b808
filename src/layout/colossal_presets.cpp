#include "shardinit/layout/colossal_presets.hpp"

#include <cmath>

#include "shardinit/error.hpp"

namespace shardinit {

namespace {

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorKind::invalid_argument, message); }

// An integer root of `size`, if there is one.
int exact_root(int size, int degree) {
  int root = static_cast<int>(std::lround(std::pow(static_cast<double>(size), 1.0 / degree)));
  for (int r = std::max(1, root - 1); r <= root + 1; ++r) {
    long long power = 1;
    for (int i = 0; i < degree; ++i) power *= r;
    if (power == size) return r;
  }
  return 0;
}

struct Preset {
  std::string_view name;
  std::size_t tensor_rank;
  std::vector<std::vector<int>> dim_axes;
  std::string_view what;  // the Colossal-AI parameter it describes
  // How Colossal-AI's reset_parameters reads its fans: in_out for Linear weights stored (in, out) and
  // for embeddings (fan_in = num_embeddings), patch for PatchEmbedding weights.
  init::FanConvention fans = init::FanConvention::torch;
};

constexpr auto kInOut = init::FanConvention::in_out;
constexpr auto kPatch = init::FanConvention::patch;

// Mesh axes per mode: 1d (t); 2d (i, j); 2.5d (k, j, i); 3d (k, j, i). Sources: the layers' constructors
// and _load_from_global_state_dict in colossalai/legacy/nn/layer/parallel_{1d,2d,2p5d,3d}/layers.py
// (docs/layouts.md lists them).
std::vector<Preset> presets(TensorParallelMode mode) {
  switch (mode) {
    case TensorParallelMode::one_d:
      return {
          {"linear_col", 2, {{0}, {}}, "Linear1D_Col.weight (out, in): row chunk t"},
          {"linear_col_bias", 1, {{0}}, "Linear1D_Col.bias (out,): chunk t"},
          {"linear_row", 2, {{}, {0}}, "Linear1D_Row.weight (out, in): column chunk t"},
          {"linear_row_bias", 1, {{}}, "Linear1D_Row.bias (out,): replicated"},
          {"vocab_embedding", 2, {{0}, {}}, "VocabParallelEmbedding1D.weight (V, E): row chunk t", kInOut},
          {"embedding", 2, {{}, {0}}, "Embedding1D.weight (V, E): column chunk t", kInOut},
          {"classifier", 2, {{}, {0}}, "Classifier1D.weight (C, in): column chunk t"},
          {"classifier_bias", 1, {{}}, "Classifier1D.bias (C,): replicated"},
          {"vocab_classifier", 2, {{0}, {}}, "VocabParallelClassifier1D.weight (C, in): row chunk t"},
          {"vocab_classifier_bias", 1, {{0}}, "VocabParallelClassifier1D.bias (C,): chunk t"},
      };
    case TensorParallelMode::two_d:
      return {
          {"linear", 2, {{0}, {1}}, "Linear2D.weight (in, out): block [i, j]", kInOut},
          {"linear_bias", 1, {{1, 0}}, "Linear2D.bias (out,): chunk j*q + i of q^2"},
          {"layernorm", 1, {{1, 0}}, "LayerNorm2D.weight/bias (H,): chunk j*q + i of q^2"},
          {"embedding", 2, {{}, {1, 0}}, "Embedding2D.weight (V, E): column chunk j*q + i of q^2", kInOut},
          {"vocab_embedding", 2, {{0}, {1}}, "VocabParallelEmbedding2D.weight (V, E): block [i, j]", kInOut},
          {"classifier", 2, {{}, {1, 0}}, "Classifier2D.weight (C, in): column chunk j*q + i of q^2"},
          {"classifier_bias", 1, {{}}, "Classifier2D.bias (C,): replicated"},
          {"vocab_classifier", 2, {{0}, {1}}, "VocabParallelClassifier2D.weight (C, in): block [i, j]"},
          {"vocab_classifier_bias", 1, {{1, 0}}, "VocabParallelClassifier2D.bias (C,): chunk j*q + i of q^2"},
          {"patch_embedding", 4, {{1, 0}, {}, {}, {}}, "PatchEmbedding2D.weight (E, C, ph, pw): chunk j*q + i of q^2", kPatch},
          {"patch_embedding_bias", 1, {{1, 0}}, "PatchEmbedding2D.bias (E,): chunk j*q + i of q^2"},
          {"cls_token", 3, {{}, {}, {1, 0}}, "PatchEmbedding2D.cls_token (1, 1, E): chunk j*q + i of q^2"},
          {"pos_embed", 3, {{}, {}, {1, 0}}, "PatchEmbedding2D.pos_embed (1, N + 1, E): chunk j*q + i of q^2"},
      };
    case TensorParallelMode::two_p5_d:
      return {
          {"linear", 2, {{1}, {2}}, "Linear2p5D.weight (in, out): block [j, i], every depth k", kInOut},
          {"linear_bias", 1, {{2}}, "Linear2p5D.bias (out,): chunk i of q"},
          {"layernorm", 1, {{2}}, "LayerNorm2p5D.weight/bias (H,): chunk i of q"},
          {"embedding", 2, {{}, {2, 1}}, "Embedding2p5D.weight (V, E): column chunk i*q + j of q^2", kInOut},
          {"vocab_embedding", 2, {{1}, {2}}, "VocabParallelEmbedding2p5D.weight (V, E): block [j, i]", kInOut},
          {"classifier", 2, {{}, {2, 1}}, "Classifier2p5D.weight (C, in): column chunk i*q + j of q^2"},
          {"classifier_bias", 1, {{}}, "Classifier2p5D.bias (C,): replicated"},
          {"vocab_classifier", 2, {{1}, {2}}, "VocabParallelClassifier2p5D.weight (C, in): block [j, i]"},
          {"vocab_classifier_bias", 1, {{2}}, "VocabParallelClassifier2p5D.bias (C,): chunk i of q"},
          {"patch_embedding", 4, {{2, 1}, {}, {}, {}}, "PatchEmbedding2p5D.weight (E, C, ph, pw): chunk i*q + j of q^2", kPatch},
          {"patch_embedding_bias", 1, {{2, 1}}, "PatchEmbedding2p5D.bias (E,): chunk i*q + j of q^2"},
          {"cls_token", 3, {{}, {}, {2, 1}}, "PatchEmbedding2p5D.cls_token (1, 1, E): chunk i*q + j of q^2"},
          {"pos_embed", 3, {{}, {}, {2, 1}}, "PatchEmbedding2p5D.pos_embed (1, N + 1, E): chunk i*q + j of q^2"},
      };
    case TensorParallelMode::three_d:
      return {
          // Every Linear3D swaps the input and output groups for the next one (swap_in_out_group), so
          // layers alternate between these and the _swapped presets (j and k trade places).
          {"linear", 2, {{0, 2}, {1}}, "Linear3D.weight (in, out): row chunk k*p + i of p^2, column chunk j", kInOut},
          {"linear_bias", 1, {{1}}, "Linear3D.bias (out,): chunk j of p"},
          {"layernorm", 1, {{0}}, "LayerNorm3D.weight/bias (H,): chunk k of p"},
          {"linear_swapped", 2, {{1, 2}, {0}},
           "Linear3D.weight (in, out) after a swap: row chunk j*p + i of p^2, column chunk k", kInOut},
          {"linear_bias_swapped", 1, {{0}}, "Linear3D.bias (out,) after a swap: chunk k of p"},
          {"layernorm_swapped", 1, {{1}}, "LayerNorm3D.weight/bias (H,) after a swap: chunk j of p"},
          // Built before any swap (after an odd number of swapping layers, j and k trade places).
          {"embedding", 2, {{}, {0}}, "Embedding3D.weight (V, E): column chunk k of p", kInOut},
          {"vocab_embedding", 2, {{1, 2}, {0}}, "VocabParallelEmbedding3D.weight (V, E): row chunk j*p + i of p^2, column chunk k", kInOut},
          {"classifier", 2, {{}, {0}}, "Classifier3D.weight (C, in): column chunk k of p"},
          {"classifier_bias", 1, {{}}, "Classifier3D.bias (C,): replicated"},
          {"vocab_classifier", 2, {{1, 2}, {0}}, "VocabParallelClassifier3D.weight (C, in): row chunk j*p + i of p^2, column chunk k"},
          {"vocab_classifier_bias", 1, {{1}}, "VocabParallelClassifier3D.bias (C,): chunk j of p"},
          {"patch_embedding", 4, {{0}, {}, {}, {}}, "PatchEmbedding3D.weight (E, C, ph, pw): chunk k of p", kPatch},
          {"patch_embedding_bias", 1, {{0}}, "PatchEmbedding3D.bias (E,): chunk k of p"},
          {"cls_token", 3, {{}, {}, {0}}, "PatchEmbedding3D.cls_token (1, 1, E): chunk k of p"},
          {"pos_embed", 3, {{}, {}, {0}}, "PatchEmbedding3D.pos_embed (1, N + 1, E): chunk k of p"},
      };
  }
  return {};
}

}  // namespace

TensorParallelMode parse_tensor_parallel_mode(std::string_view text) {
  if (text == "1d") return TensorParallelMode::one_d;
  if (text == "2d") return TensorParallelMode::two_d;
  if (text == "2.5d") return TensorParallelMode::two_p5_d;
  if (text == "3d") return TensorParallelMode::three_d;
  fail("unknown tensor parallel mode \"" + std::string(text) + "\" (expected 1d, 2d, 2.5d or 3d)");
}

std::string_view tensor_parallel_mode_name(TensorParallelMode mode) noexcept {
  switch (mode) {
    case TensorParallelMode::one_d: return "1d";
    case TensorParallelMode::two_d: return "2d";
    case TensorParallelMode::two_p5_d: return "2.5d";
    case TensorParallelMode::three_d: return "3d";
  }
  return "?";
}

ProcessMesh colossal_mesh(const TensorParallelConfig& config) {
  const std::string mode(tensor_parallel_mode_name(config.mode));
  if (config.size < 1) fail("tensor parallel size " + std::to_string(config.size) + " must be at least 1");
  if (config.mode != TensorParallelMode::two_p5_d && config.depth != 1) {
    fail("depth " + std::to_string(config.depth) + " applies to mode 2.5d only, not " + mode);
  }
  switch (config.mode) {
    case TensorParallelMode::one_d: return ProcessMesh({config.size});
    case TensorParallelMode::two_d: {
      const int q = exact_root(config.size, 2);
      if (q == 0) fail("mode 2d needs a square tensor parallel size, got " + std::to_string(config.size));
      return ProcessMesh({q, q});
    }
    case TensorParallelMode::two_p5_d: {
      if (config.depth < 1 || config.size % config.depth != 0) {
        fail("mode 2.5d needs size = q^2 * depth, got size " + std::to_string(config.size) + " and depth " +
             std::to_string(config.depth));
      }
      const int q = exact_root(config.size / config.depth, 2);
      if (q == 0) {
        fail("mode 2.5d needs size / depth to be a square, got " + std::to_string(config.size) + " / " +
             std::to_string(config.depth));
      }
      return ProcessMesh({config.depth, q, q});
    }
    case TensorParallelMode::three_d: {
      const int p = exact_root(config.size, 3);
      if (p == 0) fail("mode 3d needs a cubic tensor parallel size, got " + std::to_string(config.size));
      return ProcessMesh({p, p, p});
    }
  }
  fail("unknown tensor parallel mode");
}

TensorLayout colossal_layout(const TensorParallelConfig& config, std::string_view name, const Shape& shape) {
  if (name == "replicate") return TensorLayout::replicated(shape.size());
  const ProcessMesh mesh = colossal_mesh(config);
  const std::string mode(tensor_parallel_mode_name(config.mode));
  for (const Preset& p : presets(config.mode)) {
    if (p.name != name) continue;
    if (shape.size() != p.tensor_rank) {
      fail("layout \"" + std::string(name) + "\" of mode " + mode + " (" + std::string(p.what) + ") is for " +
           std::to_string(p.tensor_rank) + "-D tensors, the shape is " + shape_to_string(shape));
    }
    TensorLayout layout{p.dim_axes};
    for (std::size_t d = 0; d < shape.size(); ++d) {
      const Index parts = parts_of_dim(layout, d, mesh);
      if (shape[d] % parts != 0) {
        fail("layout \"" + std::string(name) + "\" of mode " + mode + " splits dimension " + std::to_string(d) +
             " of shape " + shape_to_string(shape) + " into " + std::to_string(parts) +
             " parts, which Colossal-AI requires to divide it evenly");
      }
    }
    return layout;
  }
  std::string names;
  for (const auto n : colossal_preset_names(config.mode)) names += (names.empty() ? "" : ", ") + std::string(n);
  fail("unknown layout \"" + std::string(name) + "\" for mode " + mode + " (expected one of " + names + ")");
}

init::FanConvention colossal_fan_convention(TensorParallelMode mode, std::string_view name) {
  for (const Preset& p : presets(mode)) {
    if (p.name == name) return p.fans;
  }
  return init::FanConvention::torch;
}

std::vector<std::string_view> colossal_preset_names(TensorParallelMode mode) {
  std::vector<std::string_view> names;
  for (const Preset& p : presets(mode)) names.push_back(p.name);
  names.push_back("replicate");
  return names;
}

}  // namespace shardinit
