#pragma once
// One fill of a Python tensor: the tensor is a box of a global tensor (the whole of it by default),
// filled in place with exactly the values the CLI and the C++ library give that box.

#include <cstdint>
#include <optional>
#include <string>

#include <pybind11/pybind11.h>

#include "shardinit/distributions/distribution.hpp"
#include "shardinit/dtype.hpp"
#include "shardinit/initializers/colossal.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit::python {

namespace py = pybind11;

struct FillRequest {
  std::uint64_t seed = 0;
  std::string name;                      // names the tensor; its stream unless `stream` is given
  std::optional<std::uint64_t> stream;   // one of name / stream is required
  init::Fans explicit_fans;              // fan_in= / fan_out=
  // Colossal-AI stores some Linear weights (in, out) (2d / 2.5d / 3d "linear" presets): their fans
  // default to (shape[0], shape[1]), as in the manifest (docs/layouts.md).
  bool fans_in_out = false;
  std::optional<Shape> global_shape;     // default: the tensor's own shape
  std::optional<Box> box;                // default: the whole global shape; needs global_shape
  std::optional<DType> dtype;            // default: the tensor's own element type
  int threads = 1;
};

// The distribution `initializer` gives a tensor of `global_shape`, with the manifest's rules: explicit
// fans win, the others come from the global shape; only the fans the formula reads are passed on.
// A tensor with no element gets Constant{0} after its parameters are checked on unit fans (it is a
// no-op, as in Colossal-AI). Throws Error(invalid_argument) naming the tensor and the initializer.
[[nodiscard]] Distribution resolve_distribution(const init::Initializer& initializer, const FillRequest& request,
                                                const Shape& global_shape, DType dtype, const std::string& label);

// Fills `tensor` (a NumPy array or a torch CPU tensor) in place. Needs the GIL; releases it while the
// values are computed.
void fill_tensor(py::handle tensor, const init::Initializer& initializer, const FillRequest& request);

}  // namespace shardinit::python
