#pragma once
// One fill of a Python tensor: the tensor is what one rank holds of a global tensor (the whole of it
// by default, a box, or its piece under a layout on a job's mesh), filled in place with exactly the
// values the CLI and the C++ library give there. The tensor's definition is resolved by the library's
// resolve(), as the manifest's is.

#include <cstdint>
#include <optional>
#include <string>

#include <pybind11/pybind11.h>

#include "arguments.hpp"
#include "tensor_access.hpp"
#include "shardinit/definition/tensor_definition.hpp"
#include "shardinit/dtype.hpp"
#include "shardinit/error.hpp"
#include "shardinit/initializers/colossal.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit::python {

namespace py = pybind11;

// Where a tensor is placed: layout=, mesh=, parallel=, world=, rank= (and the definition's stage=,
// layer= and a data_partition= other than 'none', which need a job). Keywords that place nothing
// (layout='replicate', data_partition='none', expert=) do not make a placement, as in a manifest
// without "parallel".
struct Placement {
  py::object mesh = py::none(), parallel = py::none(), world = py::none(), rank = py::none();
  [[nodiscard]] bool given(const DefinitionArguments& a) const {
    const auto is_text = [](py::handle v, const char* text) {
      return PyUnicode_Check(v.ptr()) && v.cast<std::string>() == text;
    };
    return !mesh.is_none() || !parallel.is_none() || !world.is_none() || !rank.is_none() ||
           (!a.layout.is_none() && !is_text(a.layout, "replicate")) || !a.stage.is_none() || !a.layer.is_none() ||
           (!a.data_partition.is_none() && !is_text(a.data_partition, "none"));
  }
};

struct FillRequest {
  std::uint64_t seed = 0;
  std::string name;                   // names the tensor; its stream unless stream= is given
  std::optional<Shape> global_shape;  // default: the tensor's own shape
  std::optional<Box> box;             // default: the whole global shape; needs global_shape
  std::optional<DType> dtype;         // default: the tensor's own element type
  int threads = 1;
  DefinitionArguments arguments;
  Placement placement;
};

// The definition of a request's tensor of `shape` and `dtype`, resolved (as resolve() does for the
// manifest), with the job it was placed on when a placement is given. Errors name the tensor.
struct Resolved {
  ResolvedTensor tensor;
  std::optional<JobChoice> job;
};
[[nodiscard]] Resolved resolve_request(const init::Initializer& initializer, const FillRequest& request, const Shape& shape,
                                       DType dtype);

// What a resolved tensor's rank holds under the request's placement (box= or the whole without one),
// and whether it holds the tensor at all (not when it belongs to other pipeline stages).
struct RankHolding {
  Holding holding;
  bool held = true;
};
[[nodiscard]] RankHolding request_holding(const Resolved& resolved, const FillRequest& request);

// "tensor 'fc1.weight'" or "tensor with stream 7", for messages.
[[nodiscard]] std::string tensor_label(const FillRequest& request);

// The resolved definition as a dict (name, shape, dtype, stream, fans, fan_convention, distribution,
// layout, layout_name, padding_idx): what the manifest and the keywords must agree on.
[[nodiscard]] py::dict resolved_dict(const ResolvedTensor& tensor);

// Runs `acquire` and prefixes the message of the py::type_error / py::value_error / Error it throws
// with `label` ("tensor 'fc1.weight': ...").
template <class Function>
auto with_label(const std::string& label, Function&& acquire) {
  try {
    return acquire();
  } catch (const py::type_error& e) {
    throw py::type_error(label + ": " + e.what());
  } catch (const py::value_error& e) {
    throw py::value_error(label + ": " + e.what());
  } catch (const Error& e) {
    throw Error(e.kind(), label + ": " + e.what());
  }
}

// The run a fill belongs to: its seed, and the threads that compute it (never a value).
struct FillSettings {
  std::uint64_t seed = 0;
  int threads = 1;
};

// Fills `target` with what a rank holds of `tensor` after checking that it is exactly that: the box's
// extent, or under zero3 a 1-d tensor of the held elements (or of the whole partition, padding zeroed);
// an empty tensor when the rank holds none of it. `shape_mismatch` ends the message of a wrong shape
// ("is not this rank's box (2, 8) of global_shape (4, 8)"). Errors start with `label`. Needs the GIL;
// releases it while the values are computed.
void fill_held(const WritableTensor& target, const std::string& label, const ResolvedTensor& tensor, const RankHolding& holding,
               const FillSettings& settings, const std::string& shape_mismatch);

// Fills `tensor` (a NumPy array or a torch CPU tensor) in place. Needs the GIL; releases it while the
// values are computed.
void fill_tensor(py::handle tensor, const init::Initializer& initializer, const FillRequest& request);

}  // namespace shardinit::python
