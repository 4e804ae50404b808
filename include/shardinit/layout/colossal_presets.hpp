#pragma once
// Colossal-AI's tensor parallelism (colossalai.legacy: 1D, 2D, 2.5D, 3D) expressed as process meshes
// and layouts, so that each rank holds exactly the block Colossal-AI's layer would hold on it
// (docs/layouts.md cites the sources).

#include <string>
#include <string_view>
#include <vector>

#include "shardinit/initializers/colossal.hpp"
#include "shardinit/layout/mesh.hpp"

namespace shardinit {

enum class TensorParallelMode { one_d, two_d, two_p5_d, three_d };

[[nodiscard]] TensorParallelMode parse_tensor_parallel_mode(std::string_view text);  // "1d", "2d", "2.5d", "3d"
[[nodiscard]] std::string_view tensor_parallel_mode_name(TensorParallelMode mode) noexcept;

struct TensorParallelConfig {
  TensorParallelMode mode = TensorParallelMode::one_d;
  int size = 1;   // tensor-parallel world size P
  int depth = 1;  // 2.5d only
};

// The mesh whose row-major rank numbering is Colossal-AI's tensor-parallel rank:
// 1d [P]; 2d [q, q] (coordinates (i, j), t = i*q + j); 2.5d [d, q, q] (coordinates (k, j, i),
// t = i + q*(j + q*k)); 3d [p, p, p] (coordinates (k, j, i), t = i + p*(j + p*k)).
// Throws Error(invalid_argument) when P is not a square (2d), q^2 * depth (2.5d) or a cube (3d).
[[nodiscard]] ProcessMesh colossal_mesh(const TensorParallelConfig& config);

// The layout of preset `name` for a tensor of `shape` (stored as Colossal-AI stores it: 1d weights
// (out, in), 2d/2.5d/3d Linear weights (in, out)). Throws Error(invalid_argument) for a name the mode
// does not have (listing those it has), a tensor of the wrong rank, or a dimension Colossal-AI would
// need divisible by its number of parts but that is not.
[[nodiscard]] TensorLayout colossal_layout(const TensorParallelConfig& config, std::string_view name,
                                           const Shape& shape);

// How Colossal-AI's layer of preset `name` reads its weight's fans (torch for names it does not have):
// in_out for the 2d / 2.5d / 3d Linear weights, stored (in, out) (fan_in = in_features) and for every
// embedding (fan_in = num_embeddings, fan_out = embedding_dim, as Embedding1D.reset_parameters and
// its siblings pass them); patch for PatchEmbedding weights (fan_out = embed_size).
[[nodiscard]] init::FanConvention colossal_fan_convention(TensorParallelMode mode, std::string_view name);

// The preset names of a mode ("replicate" belongs to every mode).
[[nodiscard]] std::vector<std::string_view> colossal_preset_names(TensorParallelMode mode);

}  // namespace shardinit
