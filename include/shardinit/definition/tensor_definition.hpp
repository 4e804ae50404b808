#pragma once
// One tensor as a user defines it, and the one place that decides what it means. The manifest's JSON
// (src/manifest/manifest.cpp) and the Python keywords (python/arguments.cpp) are two thin parsers into
// TensorDefinition; resolve() turns it into the fans, distribution, stream and layout every run uses,
// so that the two cannot drift apart (docs/manifest.md).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardinit/distributions/distribution.hpp"
#include "shardinit/dtype.hpp"
#include "shardinit/error.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/initializers/colossal.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/layout/topology.hpp"

namespace shardinit {

// The fan conventions (init::FanConvention) are the initializers' (initializers/colossal.hpp).
using init::FanConvention;

// What a tensor's layout says before it is placed on the job's mesh.
struct LayoutSpec {
  enum class Kind { replicate, preset, custom };
  Kind kind = Kind::replicate;
  std::string preset;                   // Kind::preset: a Colossal-AI preset of the topology's tensor mode
  std::vector<std::vector<int>> shard;  // Kind::custom: per tensor dimension, the mesh axes, major first
};

// One whole expert of a mixture of experts kept as tensors of its own (Hugging Face's
// `experts.{e}.w1.weight`): expert `index` of `count` experts. Under expert parallelism E the experts
// are dealt out in contiguous blocks of count / E, as Megatron-Core's and Colossal-AI's MoE layers do.
struct WholeExpert {
  Index index = 0;
  Index count = 0;
};

struct TensorDefinition {
  std::string name;
  Shape shape;  // global
  DType dtype = DType::f32;
  init::Initializer initializer = init::zeros_();
  init::Fans fans;                              // explicit fan_in / fan_out: they win
  std::optional<FanConvention> fan_convention;  // default: the preset's (colossal_fan_convention), else torch
  std::optional<std::uint64_t> stream;          // default: stream_from_name(name)
  LayoutSpec layout;
  std::optional<std::vector<int>> stages;       // the pipeline stages that hold it
  std::optional<std::int64_t> layer;            // or its layer, placed by the topology's partition rule
  std::optional<DataPartition> data_partition;  // default: the topology's
  bool expert = false;                          // dimension 0 indexes experts, split over the expert axis
  std::optional<WholeExpert> whole_expert;      // or: the tensor is one expert's, held by its expert rank
  std::optional<FusedParts> fused;              // a dimension of equal blocks (q, k, v), each split by the layout
  std::optional<Index> padding_idx;             // a row of dimension 0 filled with +0; negative counts from the end
};

// The job a definition is resolved for.
struct JobContext {
  std::size_t mesh_axes = 1;         // axes of the mesh: the "mesh", the topology's, or [world]
  std::optional<Topology> parallel;  // presets, stages, expert and data partitions need a topology
};

// The part of a definition an error is about: the manifest points at its key, Python names it.
enum class DefinitionField { name, shape, dtype, init, fan_in, fan_out, fan_convention, stream, layout, stage, layer,
                             data_partition, expert, padding_idx, fused };
// The manifest key (and Python keyword) of the field: "shape", "init", "stage", "padding_idx", ...
[[nodiscard]] std::string_view definition_field_key(DefinitionField field) noexcept;

// A definition that cannot be resolved. The message names the bad value but not the tensor or the
// field, which the caller knows how to name ("tensors[3] ("fc.w").layout: ...", or "fill_: layout: ...").
class DefinitionError : public Error {
 public:
  DefinitionError(DefinitionField field, const std::string& message)
      : Error(ErrorKind::invalid_argument, message), field_(field) {}
  [[nodiscard]] DefinitionField field() const noexcept { return field_; }

 private:
  DefinitionField field_;
};

// A definition resolved for a job: everything a run needs, checked, so that it can always be generated.
struct ResolvedTensor {
  std::string name;
  Shape shape;
  DType dtype = DType::f32;
  init::Initializer initializer = init::zeros_();
  init::Fans explicit_fans;                      // as defined
  std::optional<std::uint64_t> explicit_stream;  // as defined
  FanConvention fan_convention = FanConvention::torch;
  init::Fans fans;       // the fans the initializer reads (explicit, else by the convention; only those it reads)
  std::uint64_t stream;  // explicit_stream, else stream_from_name(name)
  Distribution distribution;
  std::optional<Index> padding_idx;  // normalized to 0 <= padding_idx < shape[0]
  bool empty = false;                // zero elements: a valid no-op (parameters are still checked)
  // Who holds what (docs/layouts.md): never changes the values or the file's bytes.
  TensorLayout layout;      // on the job's mesh, stages and data partition included
  std::string layout_name;  // the preset's name, "replicate", or "custom"

  [[nodiscard]] TensorSpec spec() const { return TensorSpec{name, shape, dtype, stream, distribution, padding_idx}; }
};

// Resolves `definition` for `job`. Throws DefinitionError for anything it cannot be: a preset or a
// stage without the topology that gives it meaning, an unknown preset, a layout that does not fit the
// shape or the mesh, a stage or layer that does not exist, a missing placement when the pipeline has
// several stages, fans or parameters the initializer cannot use, a padding row outside the tensor.
[[nodiscard]] ResolvedTensor resolve(const TensorDefinition& definition, const JobContext& job);

}  // namespace shardinit
