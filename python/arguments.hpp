#pragma once
// Python arguments to shardinit values, with messages that name the argument and the bad value:
// py::type_error for a value of the wrong kind, py::value_error for one out of range. The library's
// own checks (shardinit::Error) reach Python as ValueError through the module's translator.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <pybind11/pybind11.h>

#include "shardinit/dtype.hpp"
#include "shardinit/initializers/colossal.hpp"
#include "shardinit/layout/colossal_presets.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit::python {

namespace py = pybind11;

// repr(value), for messages.
[[nodiscard]] std::string python_repr(py::handle value);

// An integer in [0, 2**64): a seed or a stream.
[[nodiscard]] std::uint64_t to_uint64(py::handle value, std::string_view what);

// A sequence of non-negative integers (tuple, list, torch.Size): a shape, a box's start or extent.
[[nodiscard]] Shape to_shape(py::handle value, std::string_view what);

// box=(start, extent).
[[nodiscard]] Box to_box(py::handle value);

// fan_in= / fan_out=: None or a positive integer, as the manifest's "fan_in" / "fan_out".
[[nodiscard]] init::Fans to_fans(py::handle fan_in, py::handle fan_out);

// dtype=: None, 'f32', 'f64', 'bf16', 'f16' (also 'float32', 'float64', 'bfloat16', 'float16',
// torch.bfloat16 and the like).
[[nodiscard]] std::optional<DType> to_dtype(py::handle value);

// parallel={"mode": "1d", "size": 4, "depth": 1} (or the manifest's {"tensor": {...}}).
[[nodiscard]] TensorParallelConfig to_parallel(py::handle value);

// The mesh and layout of one tensor, from layout= (a dict {tensor_dim: [mesh axes]}, the manifest's
// {"shard": {...}}, "replicate", a Colossal-AI preset name, or None for replicate), mesh= (a list of
// axis sizes) and parallel= (a Colossal-AI configuration, which defines the mesh and the presets).
struct LayoutChoice {
  ProcessMesh mesh;
  TensorLayout layout;
  std::string name;                             // the preset's name, "replicate" or "custom"
  std::optional<TensorParallelConfig> parallel;
};
[[nodiscard]] LayoutChoice to_layout(py::handle layout, py::handle mesh, py::handle parallel, const Shape& shape);

// rank=: an integer in [0, mesh.size()).
[[nodiscard]] int to_rank(py::handle rank, const ProcessMesh& mesh);

}  // namespace shardinit::python
