#pragma once
// A whole training job's topology: data x pipeline x tensor parallelism, as Colossal-AI numbers its
// ranks, expressed as one process mesh so that layouts, boxes and writers stay the pure functions of
// layout/mesh.hpp. Pure (no MPI); docs/layouts.md cites the sources.
//
// The mesh's axes are the three parallel dimensions in `order`, outermost first, the tensor part
// expanded into its Colossal-AI axes (1d: one, 2d: two, 2.5d and 3d: three); ranks are row-major over
// it. With the default order (dp, pp, tp) that is Colossal-AI's legacy numbering,
// rank = dp_rank * (pp * tp) + pp_rank * tp + tp_rank, and HybridParallelPlugin's
// ProcessGroupMesh(dp, pp, tp); (pp, dp, tp) is the plugin's dp_outside=False.
//
// Expert parallelism splits the data part into two axes [edp, ep], ep inner: the data-parallel rank
// is edp_rank * ep + ep_rank, as in Megatron-Core (megatron/core/parallel_state.py,
// initialize_model_parallel: one RankGenerator for dense and one for expert layers over the order
// "tp-cp-ep-dp-pp", fastest first, the dense one with ep = 1, the expert one with cp = 1 and dp the
// expert-data-parallel size; with cp = 1 and expert tp = tp, an expert-parallel group is `ep`
// consecutive data-parallel ranks).

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardinit/layout/colossal_presets.hpp"
#include "shardinit/layout/mesh.hpp"

namespace shardinit {

// The parallel dimensions of a job. `order` lists data, pipeline and tensor; expert (the ranks that
// split the experts, inside data) and expert_data (those that replicate each expert) are the two
// parts of data when there is expert parallelism.
enum class ParallelAxis { data, pipeline, tensor, expert, expert_data };

// "dp", "pp", "tp", "ep", "edp"; parse_parallel_axis throws Error(invalid_argument) naming the valid
// ones (for `order`, only "dp", "pp", "tp").
[[nodiscard]] std::string_view parallel_axis_name(ParallelAxis axis) noexcept;
[[nodiscard]] ParallelAxis parse_parallel_axis(std::string_view text);

// How layers are assigned to pipeline stages, each rule named after its source:
// colossal_legacy_uniform: colossalai/legacy/pipeline/utils.py partition_uniform (one chunk): every
//   stage L / P layers, the last L mod P stages one more;
// colossal_hybrid: colossalai/pipeline/stage_manager.py PipelineStageManager.distribute_layers (one
//   model chunk): L / P each, one more for the L mod P stages starting at P/2 - (L mod P)/2.
enum class LayerPartition { colossal_legacy_uniform, colossal_hybrid };

[[nodiscard]] std::string_view layer_partition_name(LayerPartition rule) noexcept;  // "uniform", "hybrid"
[[nodiscard]] LayerPartition parse_layer_partition(std::string_view text);

// The number of layers of each of `stages` stages. Preconditions: layers >= 0, stages >= 1.
[[nodiscard]] std::vector<int> layers_per_stage(int layers, int stages, LayerPartition rule);
// The stage that holds layer `layer`. Precondition: 0 <= layer < layers.
[[nodiscard]] int stage_of_layer(int layer, int layers, int stages, LayerPartition rule);

struct PipelineLayers {
  int layers = 0;
  LayerPartition partition = LayerPartition::colossal_legacy_uniform;
};

struct Topology {
  std::optional<int> data;  // as given; otherwise world / (pipeline * tensor), as Colossal-AI derives it
  int pipeline = 1;
  TensorParallelConfig tensor;
  std::array<ParallelAxis, 3> order{ParallelAxis::data, ParallelAxis::pipeline, ParallelAxis::tensor};
  std::optional<PipelineLayers> layers;  // "pipeline": {"size", "layers", "partition"}
  int expert = 1;  // expert-parallel size: divides data; above 1 the data part has two axes [edp, ep]
  // The data partition of every tensor that does not choose its own ("data_partition").
  DataPartition data_partition = DataPartition::none;
};

// The data-parallel size of `topology` on `world` ranks. Throws Error(invalid_argument) when
// pipeline * tensor does not divide the world, an explicit "data" disagrees with it, or the expert
// size does not divide it.
[[nodiscard]] int topology_data_size(const Topology& topology, int world);

// The job's mesh on `world` ranks (throws as topology_data_size). Its axes do not depend on the
// world: data and pipeline always have one axis each (possibly of size 1).
[[nodiscard]] ProcessMesh topology_mesh(const Topology& topology, int world);

// The first mesh axis of `axis` (the tensor part has colossal_mesh(tensor).shape().size() axes, data
// two when expert > 1: expert_data, then expert; data itself is its first) and how many axes the
// mesh has.
[[nodiscard]] int topology_axis(const Topology& topology, ParallelAxis axis);
[[nodiscard]] int topology_axes(const Topology& topology);
// The mesh axes of the data part, outermost first: [dp], or [edp, ep].
[[nodiscard]] std::vector<int> topology_data_axes(const Topology& topology);

// The name of each mesh axis, as {"shard": ...} lists may use them: "dp" (or "edp" and "ep" with
// expert parallelism), "pp", and "tp" where the tensor part is one axis ("" for the axes of a 2d,
// 2.5d or 3d tensor part, which have no names).
[[nodiscard]] std::vector<std::string> topology_axis_names(const Topology& topology);

// A preset's layout (axes of the tensor-parallel mesh) moved onto the job's mesh.
[[nodiscard]] TensorLayout topology_layout(const Topology& topology, const TensorLayout& tensor_layout);

// A rank's place in the job: its data-parallel rank, pipeline stage and tensor-parallel rank
// (Colossal-AI's local ranks in its DATA, PIPELINE and TENSOR groups).
struct ParallelCoordinates {
  int data = 0;
  int pipeline = 0;
  int tensor = 0;
  int expert = 0;       // the rank in its expert-parallel group (0 without expert parallelism)
  int expert_data = 0;  // the rank in its expert-data-parallel group: data = expert_data * expert size + expert
  friend bool operator==(const ParallelCoordinates&, const ParallelCoordinates&) = default;
};
// Preconditions: 0 <= rank < world; the topology fits the world (topology_data_size does not throw).
// rank_of reads data, pipeline and tensor (expert and expert_data follow from data).
[[nodiscard]] ParallelCoordinates parallel_coordinates(const Topology& topology, int world, int rank);
[[nodiscard]] int rank_of(const Topology& topology, int world, const ParallelCoordinates& coordinates);
// The ranks of `rank`'s group along `axis` (those that differ from it only there), by local rank.
[[nodiscard]] std::vector<int> parallel_group(const Topology& topology, int world, int rank, ParallelAxis axis);

}  // namespace shardinit
