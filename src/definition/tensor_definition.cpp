#include "shardinit/definition/tensor_definition.hpp"

#include <algorithm>

#include "shardinit/engine/stream.hpp"
#include "shardinit/layout/colossal_presets.hpp"
#include "util/checked.hpp"
#include "util/printable.hpp"

namespace shardinit {

namespace {

using Field = DefinitionField;

[[noreturn]] void fail(Field field, const std::string& message) { throw DefinitionError(field, message); }

// Runs a library check whose Error names no field, and files it under `field`.
template <class Check>
auto under(Field field, Check check) {
  try {
    return check();
  } catch (const DefinitionError&) {
    throw;
  } catch (const Error& e) {
    fail(field, e.what());
  }
}

bool splits_over(const TensorLayout& layout, int axis) {
  return std::any_of(layout.dim_axes.begin(), layout.dim_axes.end(),
                     [&](const std::vector<int>& axes) { return std::find(axes.begin(), axes.end(), axis) != axes.end(); });
}

std::string plural(std::size_t n, const char* one, const char* many) { return std::to_string(n) + " " + (n == 1 ? one : many); }

// The tensor-parallel part of the layout: the preset's or the custom split, on the job's mesh.
TensorLayout place_layout(const TensorDefinition& d, const JobContext& job, const Shape& matrix_shape) {
  switch (d.layout.kind) {
    case LayoutSpec::Kind::replicate: return TensorLayout::replicated(d.shape.size());
    case LayoutSpec::Kind::preset: {
      if (d.layout.preset == "replicate") return TensorLayout::replicated(d.shape.size());
      if (!job.parallel) {
        fail(Field::layout, "layout \"" + detail::printable(d.layout.preset) +
                                "\" is a Colossal-AI preset: it needs the tensor-parallel topology, \"parallel\": {\"tensor\": {\"mode\": ..., "
                                "\"size\": ...}} (parallel= in Python); with a plain mesh, use \"replicate\" or {\"shard\": {...}}");
      }
      TensorLayout layout = under(Field::layout, [&] {
        return topology_layout(*job.parallel, colossal_layout(job.parallel->tensor, d.layout.preset, matrix_shape));
      });
      if (d.expert) layout.dim_axes.insert(layout.dim_axes.begin(), std::vector<int>{});  // each expert's matrix is shape[1:]
      return layout;
    }
    case LayoutSpec::Kind::custom: {
      if (d.layout.shard.size() != d.shape.size()) {
        fail(Field::layout, "the layout describes " + plural(d.layout.shard.size(), "dimension", "dimensions") + ", the shape " +
                                shape_to_string(d.shape) + " has " + std::to_string(d.shape.size()));
      }
      TensorLayout layout(d.layout.shard);
      std::vector<int> all;
      for (const auto& axes : layout.dim_axes) {
        for (const int axis : axes) {
          if (axis < 0 || static_cast<std::size_t>(axis) >= job.mesh_axes) {
            fail(Field::layout, "mesh axis " + std::to_string(axis) + " does not exist: the mesh has " +
                                    plural(job.mesh_axes, "axis", "axes"));
          }
          all.push_back(axis);
        }
      }
      std::sort(all.begin(), all.end());
      if (const auto twice = std::adjacent_find(all.begin(), all.end()); twice != all.end()) {
        fail(Field::layout, "mesh axis " + std::to_string(*twice) + " is used twice in " + layout.to_string());
      }
      return layout;
    }
  }
  fail(Field::layout, "unknown layout kind");
}

// "stage": s or [s, ...], or "layer": i under "pipeline": {"layers": L}. With a pipeline of more than
// one stage every tensor must say; with one stage (or none) the tensor is everywhere.
void place_on_stages(const TensorDefinition& d, const JobContext& job, TensorLayout& layout) {
  const int stages = job.parallel ? job.parallel->pipeline : 1;
  if (d.stages && d.layer) fail(Field::layer, "give either \"stage\" or \"layer\", not both");
  std::vector<int> chosen;
  if (d.stages) {
    if (d.stages->empty()) fail(Field::stage, "expected at least one stage");
    for (const int s : *d.stages) {
      if (s < 0 || s >= stages) {
        fail(Field::stage, "stage " + std::to_string(s) + " does not exist: the pipeline has " + plural(static_cast<std::size_t>(stages), "stage", "stages") +
                               (job.parallel ? "" : " (stages need \"parallel\": {\"pipeline\": P})"));
      }
      chosen.push_back(s);
    }
    std::sort(chosen.begin(), chosen.end());
    if (std::adjacent_find(chosen.begin(), chosen.end()) != chosen.end()) fail(Field::stage, "a stage is listed twice");
  } else if (d.layer) {
    if (!job.parallel || !job.parallel->layers) {
      fail(Field::layer, "\"layer\" needs \"parallel\": {\"pipeline\": {\"size\": P, \"layers\": L}} to place layers on stages");
    }
    const PipelineLayers& p = *job.parallel->layers;
    if (*d.layer < 0 || *d.layer >= p.layers) {
      fail(Field::layer, "layer " + std::to_string(*d.layer) + " does not exist: the pipeline has " + std::to_string(p.layers) + " layers");
    }
    chosen.push_back(stage_of_layer(static_cast<int>(*d.layer), p.layers, stages, p.partition));
  } else if (stages > 1) {
    fail(Field::stage, "the pipeline has " + std::to_string(stages) +
                           " stages: say which hold this tensor, with \"stage\": s (or [s, ...]) or \"layer\": i");
  }
  if (stages > 1) {
    const int axis = topology_axis(*job.parallel, ParallelAxis::pipeline);
    if (splits_over(layout, axis)) {
      fail(Field::layout, "the layout splits over the pipeline axis " + std::to_string(axis) +
                              ", whose coordinate is a rank's stage: a tensor is held by its stages, not split over them");
    }
    layout.held_along.push_back(HeldAlong{HeldAlong::Kind::stages, axis, chosen});
  }
}

// Experts. A stack ("expert": true): dimension 0 split over the expert axis (in front of whatever
// else splits it). Without expert parallelism (no topology, or expert 1) dimension 0 is split over
// nothing, but the tensor is still a stack of experts, whose fans come from each expert's matrix:
// its values never depend on E. A whole expert ({"index": e, "of": N}): held, whole, by the expert
// rank e / (N / E) only, as Megatron-Core deals experts out (local_expert_indices_offset = ep_rank *
// num_local_experts) and Colossal-AI's EPMixtralSparseMoeBlock (expert_start_idx = ep_rank *
// num_experts_per_ep).
void place_experts(const TensorDefinition& d, const JobContext& job, TensorLayout& layout) {
  if (d.expert && d.whole_expert) fail(Field::expert, "a tensor is a stack of experts or one whole expert, not both");
  if (d.whole_expert) {
    const auto [index, count] = *d.whole_expert;
    if (count < 1) fail(Field::expert, "\"of\" is the number of experts: at least 1, got " + std::to_string(count));
    if (index >= count) {
      fail(Field::expert, "expert " + std::to_string(index) + " does not exist: there are " + std::to_string(count) +
                              " (expected 0 <= index < " + std::to_string(count) + ")");
    }
  }
  if (d.expert && d.shape.empty()) fail(Field::expert, "a scalar has no expert dimension (dimension 0)");
  if (!(d.expert || d.whole_expert) || !job.parallel || job.parallel->expert <= 1) return;
  const int experts = job.parallel->expert;
  const Index count = d.whole_expert ? d.whole_expert->count : d.shape[0];
  if (count % experts != 0) {
    fail(Field::expert, (d.whole_expert ? "the " + std::to_string(count) + " experts" : "dimension 0 (" + std::to_string(count) + " experts)") +
                            " must be divisible by the expert parallel size " + std::to_string(experts) +
                            ", as Megatron-Core requires (num_moe_experts % expert_model_parallel_size == 0)");
  }
  const int axis = topology_axis(*job.parallel, ParallelAxis::expert);
  if (splits_over(layout, axis)) {
    fail(Field::layout, "the layout splits over the expert axis " + std::to_string(axis) + " itself; with \"expert\", " +
                            (d.whole_expert ? "the tensor is held by one expert rank" : "dimension 0 is split over it already"));
  }
  if (d.whole_expert) {
    const Index per_rank = count / experts;
    layout.held_along.push_back(HeldAlong{HeldAlong::Kind::expert, axis, {static_cast<int>(d.whole_expert->index / per_rank)}});
    return;
  }
  auto& axes = layout.dim_axes[0];
  axes.insert(axes.begin(), axis);
}

// The data partition: over the data axes the tensor does not split (an expert tensor's expert axis
// splits it already, or holds a whole expert on one expert rank, so experts are partitioned over
// their expert-data-parallel group, as Megatron's distributed optimizer does).
void place_data_partition(const TensorDefinition& d, const JobContext& job, TensorLayout& layout) {
  const DataPartition partition = d.data_partition ? *d.data_partition : job.parallel ? job.parallel->data_partition : DataPartition::none;
  if (partition == DataPartition::none) return;
  if (!job.parallel) {
    fail(Field::data_partition, "data partition \"" + std::string(data_partition_name(partition)) +
                                    "\" needs the data-parallel axis of \"parallel\": {\"data\": D, ...}");
  }
  if (partition == DataPartition::fsdp2 && d.shape.empty()) fail(Field::data_partition, "fsdp2 shards dimension 0, and a scalar has none");
  layout.partition = partition;
  for (const int axis : topology_data_axes(*job.parallel)) {
    const bool held_along = std::any_of(layout.held_along.begin(), layout.held_along.end(), [&](const HeldAlong& h) { return h.axis == axis; });
    if (!splits_over(layout, axis) && !held_along) layout.partition_axes.push_back(axis);
  }
  if (layout.partition_axes.empty()) {
    fail(Field::data_partition, "the layout already splits the tensor over every data-parallel axis: nothing is left to partition");
  }
}

FanConvention preset_fan_convention(const TensorDefinition& d, const JobContext& job) {
  if (d.layout.kind != LayoutSpec::Kind::preset || !job.parallel) return FanConvention::torch;
  return colossal_fan_convention(job.parallel->tensor.mode, d.layout.preset);
}

}  // namespace

std::string_view definition_field_key(DefinitionField field) noexcept {
  switch (field) {
    case Field::name: return "name";
    case Field::shape: return "shape";
    case Field::dtype: return "dtype";
    case Field::init: return "init";
    case Field::fan_in: return "fan_in";
    case Field::fan_out: return "fan_out";
    case Field::fan_convention: return "fan_convention";
    case Field::stream: return "stream";
    case Field::layout: return "layout";
    case Field::stage: return "stage";
    case Field::layer: return "layer";
    case Field::data_partition: return "data_partition";
    case Field::expert: return "expert";
    case Field::padding_idx: return "padding_idx";
    case Field::fused: return "fused";
  }
  return "?";
}

ResolvedTensor resolve(const TensorDefinition& d, const JobContext& job) {
  ResolvedTensor t;
  t.name = d.name;
  if (t.name.empty()) fail(Field::name, "the name is empty");
  if (t.name == "__metadata__") fail(Field::name, "\"__metadata__\" is reserved by safetensors");  // the header's own key
  t.shape = d.shape;
  t.dtype = d.dtype;
  t.initializer = d.initializer;
  t.explicit_fans = d.fans;
  t.explicit_stream = d.stream;
  t.empty = under(Field::shape, [&] { return element_count(t.shape) == 0; });
  // Its bytes must fit in a file (a signed 64-bit offset): [2^62] f32 would wrap to zero bytes.
  if (!t.empty && !detail::checked_mul(element_count(t.shape), static_cast<std::int64_t>(dtype_size(t.dtype)))) {
    fail(Field::shape, shape_to_string(t.shape) + " elements of " + std::string(dtype_name(t.dtype)) +
                           " are more than 2^63 - 1 bytes, more than any file holds");
  }
  for (const auto& [fan, field] : {std::pair{d.fans.fan_in, Field::fan_in}, std::pair{d.fans.fan_out, Field::fan_out}}) {
    if (fan && *fan <= 0) fail(field, "a fan must be positive, got " + std::to_string(*fan));
  }
  t.stream = d.stream ? *d.stream : stream_from_name(t.name);

  // An expert tensor is a stack of matrices: presets and fans describe each expert, shape[1:].
  Shape matrix_shape = d.expert && !d.shape.empty() ? Shape(d.shape.begin() + 1, d.shape.end()) : d.shape;
  if (d.fused) {
    // Each block is split as the layout splits the dimension: a preset's evenness is each block's.
    const auto [dim, parts] = *d.fused;
    if (d.expert) fail(Field::fused, "a stack of experts (\"expert\": true) cannot also have a fused dimension");
    if (dim >= d.shape.size()) {
      fail(Field::fused, "dimension " + std::to_string(dim) + " does not exist: the shape " + shape_to_string(d.shape) + " has " +
                             plural(d.shape.size(), "dimension", "dimensions"));
    }
    if (parts < 1 || d.shape[dim] % parts != 0) {
      fail(Field::fused, "dimension " + std::to_string(dim) + " (" + std::to_string(d.shape[dim]) + ") is not " + std::to_string(parts) +
                             " equal parts");
    }
    matrix_shape[dim] /= parts;
  }
  t.layout = place_layout(d, job, matrix_shape);
  if (d.fused) t.layout.fused = *d.fused;
  t.layout_name = d.layout.kind == LayoutSpec::Kind::custom ? "custom"
                  : d.layout.kind == LayoutSpec::Kind::preset ? d.layout.preset
                                                              : "replicate";
  place_experts(d, job, t.layout);
  place_on_stages(d, job, t.layout);
  std::sort(t.layout.held_along.begin(), t.layout.held_along.end(), [](const HeldAlong& a, const HeldAlong& b) { return a.axis < b.axis; });
  place_data_partition(d, job, t.layout);
  if (d.fused && d.fused->dim == 0 && t.layout.partition == DataPartition::fsdp2) {
    fail(Field::fused, "fsdp2 chunks dimension 0 of the rank's tensor, which is fused: fuse another dimension, or use zero3");
  }

  if (d.padding_idx) {
    if (t.shape.empty()) fail(Field::padding_idx, "a scalar has no rows");
    const Index rows = t.shape[0];
    const Index p = *d.padding_idx;
    // torch.nn.Embedding: -num_embeddings <= padding_idx < num_embeddings, negative from the end.
    if (p < -rows || p >= rows) {
      fail(Field::padding_idx, "padding_idx " + std::to_string(p) + " is not a row of dimension 0 (" + std::to_string(rows) +
                                   " rows: expected " + std::to_string(-rows) + " <= padding_idx < " + std::to_string(rows) + ")");
    }
    t.padding_idx = p < 0 ? p + rows : p;
  }

  t.fan_convention = d.fan_convention ? *d.fan_convention : preset_fan_convention(d, job);
  // Resolve fans and the distribution now, so that a definition that resolves can always be generated.
  try {
    // A zero-element tensor may have other dimensions whose fans overflow; it keeps only explicit fans.
    init::Fans resolved = t.explicit_fans;
    // The shape is read only for a fan the formula reads and the definition does not give: a
    // convention that is not needed is never applied (nor refused).
    const bool derive = (t.initializer.uses_fan_in() && !t.explicit_fans.fan_in) || (t.initializer.uses_fan_out() && !t.explicit_fans.fan_out);
    if (!t.empty && derive && d.fan_convention) {  // a convention the user chose: its error is about that choice
      resolved = under(Field::fan_convention, [&] { return init::resolve_fans(t.explicit_fans, matrix_shape, t.fan_convention); });
    } else if (!t.empty && derive) {
      resolved = init::resolve_fans(t.explicit_fans, matrix_shape, t.fan_convention);
    }
    if (t.initializer.uses_fan_in()) t.fans.fan_in = resolved.fan_in;
    if (t.initializer.uses_fan_out()) t.fans.fan_out = resolved.fan_out;
    if (t.empty) {
      // Colossal-AI treats a zero-element tensor as a no-op before looking at its fans (which may be
      // 0 here); the initializer's own parameters are still checked, on unit fans.
      validate(t.initializer(init::Fans{1, 1}), t.dtype);
      t.distribution = Constant{0.0};
    } else {
      t.distribution = t.initializer(t.fans);
      validate(t.distribution, t.dtype);
    }
  } catch (const DefinitionError&) {
    throw;
  } catch (const Error& e) {
    const std::string_view kind = init::kind_name(t.initializer.kind());
    const std::string_view message = e.what();
    fail(Field::init, (message.starts_with(kind) ? "" : std::string(kind) + ": ") + std::string(message));
  }
  return t;
}

}  // namespace shardinit
