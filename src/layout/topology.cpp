#include "shardinit/layout/topology.hpp"

#include <algorithm>

#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit {

namespace {
[[noreturn]] void fail(const std::string& message) { throw Error(ErrorKind::invalid_argument, message); }

int tensor_axes(const Topology& topology) { return static_cast<int>(colossal_mesh(topology.tensor).shape().size()); }
int data_axes(const Topology& topology) { return topology.expert > 1 ? 2 : 1; }
}  // namespace

std::string_view parallel_axis_name(ParallelAxis axis) noexcept {
  switch (axis) {
    case ParallelAxis::data: return "dp";
    case ParallelAxis::pipeline: return "pp";
    case ParallelAxis::tensor: return "tp";
    case ParallelAxis::expert: return "ep";
    case ParallelAxis::expert_data: return "edp";
  }
  return "?";
}

ParallelAxis parse_parallel_axis(std::string_view text) {
  for (const ParallelAxis a : {ParallelAxis::data, ParallelAxis::pipeline, ParallelAxis::tensor, ParallelAxis::expert,
                               ParallelAxis::expert_data}) {
    if (text == parallel_axis_name(a)) return a;
  }
  fail("unknown parallel axis " + detail::quote(text) + " (expected \"dp\", \"pp\", \"tp\", \"ep\" or \"edp\")");
}

std::string_view layer_partition_name(LayerPartition rule) noexcept {
  return rule == LayerPartition::colossal_legacy_uniform ? "uniform" : "hybrid";
}

LayerPartition parse_layer_partition(std::string_view text) {
  if (text == "uniform") return LayerPartition::colossal_legacy_uniform;
  if (text == "hybrid") return LayerPartition::colossal_hybrid;
  fail("unknown layer partition " + detail::quote(text) +
       " (expected \"uniform\": Colossal-AI's legacy partition_uniform, or \"hybrid\": HybridParallelPlugin's distribute_layers)");
}

std::vector<int> layers_per_stage(int layers, int stages, LayerPartition rule) {
  const int quotient = layers / stages, remainder = layers % stages;
  std::vector<int> counts(static_cast<std::size_t>(stages), quotient);
  // legacy partition_uniform: `left = P - L % P`, stages p >= left get one more.
  // distribute_layers: the `remainder` stages from P // 2 - remainder // 2 get one more.
  const int first = rule == LayerPartition::colossal_legacy_uniform ? stages - remainder : stages / 2 - remainder / 2;
  for (int s = first; s < first + remainder; ++s) ++counts[static_cast<std::size_t>(s)];
  return counts;
}

int stage_of_layer(int layer, int layers, int stages, LayerPartition rule) {
  const std::vector<int> counts = layers_per_stage(layers, stages, rule);
  int end = 0;
  for (int s = 0; s < stages; ++s) {
    end += counts[static_cast<std::size_t>(s)];
    if (layer < end) return s;
  }
  return stages - 1;  // unreachable under the precondition
}

int topology_data_size(const Topology& topology, int world) {
  const long long inner = static_cast<long long>(topology.pipeline) * topology.tensor.size;
  if (world % inner != 0) {
    fail("the pipeline size " + std::to_string(topology.pipeline) + " times the tensor parallel size " +
         std::to_string(topology.tensor.size) + " is " + std::to_string(inner) + ", which does not divide the " +
         std::to_string(world) + " ranks that are running");
  }
  const int data = static_cast<int>(world / inner);
  if (topology.data && *topology.data != data) {
    fail("data " + std::to_string(*topology.data) + " x pipeline " + std::to_string(topology.pipeline) + " x tensor " +
         std::to_string(topology.tensor.size) + " is " + std::to_string(*topology.data * inner) + " ranks, but " +
         std::to_string(world) + " ranks are running");
  }
  if (data % topology.expert != 0) {
    fail("the expert parallel size " + std::to_string(topology.expert) + " does not divide the data parallel size " +
         std::to_string(data) + " (" + std::to_string(world) + " ranks / (pipeline " + std::to_string(topology.pipeline) +
         " x tensor " + std::to_string(topology.tensor.size) + "))");
  }
  return data;
}

int topology_axis(const Topology& topology, ParallelAxis axis) {
  if (axis == ParallelAxis::expert_data) return topology_axis(topology, ParallelAxis::data);
  if (axis == ParallelAxis::expert) return topology_axis(topology, ParallelAxis::data) + data_axes(topology) - 1;
  int first = 0;
  for (const ParallelAxis a : topology.order) {
    if (a == axis) return first;
    first += a == ParallelAxis::tensor ? tensor_axes(topology) : a == ParallelAxis::data ? data_axes(topology) : 1;
  }
  return first;  // unreachable: order holds every axis
}

int topology_axes(const Topology& topology) { return 1 + data_axes(topology) + tensor_axes(topology); }

std::vector<int> topology_data_axes(const Topology& topology) {
  const int first = topology_axis(topology, ParallelAxis::data);
  return data_axes(topology) == 1 ? std::vector<int>{first} : std::vector<int>{first, first + 1};
}

ProcessMesh topology_mesh(const Topology& topology, int world) {
  const int data = topology_data_size(topology, world);
  std::vector<int> shape;
  for (const ParallelAxis a : topology.order) {
    if (a == ParallelAxis::data && topology.expert > 1) {
      shape.push_back(data / topology.expert);
      shape.push_back(topology.expert);
    } else if (a == ParallelAxis::data) {
      shape.push_back(data);
    }
    if (a == ParallelAxis::pipeline) shape.push_back(topology.pipeline);
    if (a == ParallelAxis::tensor) {
      const ProcessMesh tensor = colossal_mesh(topology.tensor);
      shape.insert(shape.end(), tensor.shape().begin(), tensor.shape().end());
    }
  }
  return ProcessMesh(std::move(shape));
}

std::vector<std::string> topology_axis_names(const Topology& topology) {
  std::vector<std::string> names(static_cast<std::size_t>(topology_axes(topology)));
  if (topology.expert > 1) {
    names[topology_axis(topology, ParallelAxis::expert_data)] = "edp";
    names[topology_axis(topology, ParallelAxis::expert)] = "ep";
  } else {
    names[topology_axis(topology, ParallelAxis::data)] = "dp";
  }
  names[topology_axis(topology, ParallelAxis::pipeline)] = "pp";
  if (tensor_axes(topology) == 1) names[topology_axis(topology, ParallelAxis::tensor)] = "tp";
  return names;
}

TensorLayout topology_layout(const Topology& topology, const TensorLayout& tensor_layout) {
  TensorLayout layout = tensor_layout;
  const int offset = topology_axis(topology, ParallelAxis::tensor);
  for (auto& axes : layout.dim_axes) {
    for (int& axis : axes) axis += offset;
  }
  return layout;
}

ParallelCoordinates parallel_coordinates(const Topology& topology, int world, int rank) {
  const ProcessMesh mesh = topology_mesh(topology, world);
  const std::vector<int> at = mesh.coordinates(rank);
  const int tensor_first = topology_axis(topology, ParallelAxis::tensor);
  int tensor = 0;  // row-major over the tensor axes: Colossal-AI's tensor-parallel rank (colossal_mesh)
  for (int a = tensor_first; a < tensor_first + tensor_axes(topology); ++a) tensor = tensor * mesh.shape()[a] + at[a];
  ParallelCoordinates c;
  c.pipeline = at[topology_axis(topology, ParallelAxis::pipeline)];
  c.tensor = tensor;
  if (topology.expert > 1) {
    c.expert_data = at[topology_axis(topology, ParallelAxis::expert_data)];
    c.expert = at[topology_axis(topology, ParallelAxis::expert)];
    c.data = c.expert_data * topology.expert + c.expert;
  } else {
    c.data = c.expert_data = at[topology_axis(topology, ParallelAxis::data)];
  }
  return c;
}

int rank_of(const Topology& topology, int world, const ParallelCoordinates& c) {
  const ProcessMesh mesh = topology_mesh(topology, world);
  std::vector<int> at(mesh.shape().size());
  if (topology.expert > 1) {
    at[topology_axis(topology, ParallelAxis::expert_data)] = c.data / topology.expert;
    at[topology_axis(topology, ParallelAxis::expert)] = c.data % topology.expert;
  } else {
    at[topology_axis(topology, ParallelAxis::data)] = c.data;
  }
  at[topology_axis(topology, ParallelAxis::pipeline)] = c.pipeline;
  const int tensor_first = topology_axis(topology, ParallelAxis::tensor);
  int tensor = c.tensor;
  for (int a = tensor_first + tensor_axes(topology); a-- > tensor_first;) {
    at[a] = tensor % mesh.shape()[a];
    tensor /= mesh.shape()[a];
  }
  return mesh.rank_of(at);
}

std::vector<int> parallel_group(const Topology& topology, int world, int rank, ParallelAxis axis) {
  const int data = topology_data_size(topology, world);
  const ParallelCoordinates at = parallel_coordinates(topology, world, rank);
  std::vector<int> group;
  const auto member = [&](int i) {
    ParallelCoordinates c = at;
    switch (axis) {
      case ParallelAxis::data: c.data = i; break;
      case ParallelAxis::pipeline: c.pipeline = i; break;
      case ParallelAxis::tensor: c.tensor = i; break;
      case ParallelAxis::expert: c.data = at.expert_data * topology.expert + i; break;
      case ParallelAxis::expert_data: c.data = i * topology.expert + at.expert; break;
    }
    return rank_of(topology, world, c);
  };
  const int size = axis == ParallelAxis::data          ? data
                   : axis == ParallelAxis::pipeline    ? topology.pipeline
                   : axis == ParallelAxis::tensor      ? topology.tensor.size
                   : axis == ParallelAxis::expert      ? topology.expert
                                                       : data / topology.expert;
  for (int i = 0; i < size; ++i) group.push_back(member(i));
  return group;
}

}  // namespace shardinit
