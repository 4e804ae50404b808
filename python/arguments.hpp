#pragma once
// Python arguments to shardinit values, with messages that name the argument and the bad value:
// py::type_error for a value of the wrong kind, py::value_error for one out of range. The library's
// own checks (shardinit::Error) reach Python as ValueError through the module's translator.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <pybind11/pybind11.h>

#include "shardinit/definition/tensor_definition.hpp"
#include "shardinit/dtype.hpp"
#include "shardinit/initializers/colossal.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/layout/topology.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit::python {

namespace py = pybind11;

// repr(value), for messages.
[[nodiscard]] std::string python_repr(py::handle value);

// An integer in [0, 2**64): a seed or a stream.
[[nodiscard]] std::uint64_t to_uint64(py::handle value, std::string_view what);

// An integer (operator.index: Python's, NumPy's) >= minimum (0 or 1) and below 2**63; else a
// TypeError or ValueError naming `what` ("tp must be a positive integer, got 0").
[[nodiscard]] Index to_index(py::handle value, std::string_view what, Index minimum);

// A sequence of non-negative integers (tuple, list, torch.Size): a shape, a box's start or extent.
[[nodiscard]] Shape to_shape(py::handle value, std::string_view what);

// box=(start, extent).
[[nodiscard]] Box to_box(py::handle value);

// fan_in= / fan_out=: None or a positive integer, as the manifest's "fan_in" / "fan_out".
[[nodiscard]] init::Fans to_fans(py::handle fan_in, py::handle fan_out);

// dtype=: None, 'f32', 'f64', 'bf16', 'f16' (also 'float32', 'float64', 'bfloat16', 'float16',
// torch.bfloat16 and the like).
[[nodiscard]] std::optional<DType> to_dtype(py::handle value);

// parallel=: the manifest's "parallel" object ({"tensor": {...}, "data": ..., "pipeline": ..., "order": ...,
// "expert": ..., "data_partition": ...}) or its tensor part alone ({"mode": "1d", "size": 4}), read by
// the manifest's own parser (parse_topology_json), so both accept and refuse the same.
[[nodiscard]] Topology to_topology(py::handle value);

// The job a tensor is placed on: parallel= (a topology: its mesh [dp, pp, tp...]) or mesh= (a list of
// axis sizes), on world= ranks (default: data x pipeline x tensor, with data 1 unless the topology
// gives it; the mesh's size for mesh=).
struct JobChoice {
  JobContext job;
  ProcessMesh mesh;
  std::vector<std::string> axis_names;  // names layout dicts may use for axes ("" for none)
};
[[nodiscard]] JobChoice to_job(py::handle mesh, py::handle parallel, py::handle world);

// layout=: None or 'replicate', a Colossal-AI preset name, or {tensor_dim: [mesh axes]} with axes as
// numbers or names (the manifest's {"shard": {...}} too).
[[nodiscard]] LayoutSpec to_layout_spec(py::handle layout, const Shape& shape, const std::vector<std::string>& axis_names);

// The keywords of a tensor's definition beyond its name, shape and initializer, as the manifest's keys.
struct DefinitionArguments {
  py::object fan_in = py::none(), fan_out = py::none(), fan_convention = py::none(), stream = py::none(),
             padding_idx = py::none();
  py::object layout = py::none(), stage = py::none(), layer = py::none(), data_partition = py::none(), expert = py::none(),
             fused = py::none();
};
// Puts them into `definition` (checked for their Python types; what they mean is resolve()'s).
void apply_definition_arguments(const DefinitionArguments& arguments, const std::vector<std::string>& axis_names,
                                TensorDefinition& definition);

// rank=: an integer in [0, mesh.size()).
[[nodiscard]] int to_rank(py::handle rank, const ProcessMesh& mesh);

}  // namespace shardinit::python
