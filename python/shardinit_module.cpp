// The Python module `shardinit` (docs/python.md): Colossal-AI style initializers (shardinit.init) and
// a lower-level fill_ that fill NumPy arrays and PyTorch CPU tensors in place, shard by shard, with
// exactly the values of the CLI and the C++ library.

#include <exception>
#include <string>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arguments.hpp"
#include "fill.hpp"
#include "initializer.hpp"
#include "shardinit/engine/stream.hpp"
#include "shardinit/error.hpp"
#include "shardinit/layout/colossal_presets.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/version.hpp"

namespace py = pybind11;
using namespace shardinit;
using namespace shardinit::python;

namespace {

py::tuple box_tuple(const Box& box) {
  return py::make_tuple(py::tuple(py::cast(box.start)), py::tuple(py::cast(box.extent)));
}

// fill_(tensor, global_shape, initializer, seed, name=None, *, box=None, layout=None, mesh=None,
// rank=None, parallel=None, fan_in=None, fan_out=None, stream=None, dtype=None, threads=1)
py::object fill_(py::object tensor, py::object global_shape, const init::Initializer& initializer, py::object seed,
                 py::object name, py::object box, py::object layout, py::object mesh, py::object rank,
                 py::object parallel, py::object fan_in, py::object fan_out, py::object stream, py::object dtype,
                 int threads) {
  FillRequest request;
  request.seed = to_uint64(seed, "seed");
  if (!name.is_none()) {
    if (!PyUnicode_Check(name.ptr())) throw py::type_error("name must be a string, got " + python_repr(name));
    request.name = name.cast<std::string>();
  }
  if (!stream.is_none()) request.stream = to_uint64(stream, "stream");
  request.explicit_fans = to_fans(fan_in, fan_out);
  request.global_shape = to_shape(global_shape, "global_shape");
  request.dtype = to_dtype(dtype);
  request.threads = threads;
  const bool layout_given = !layout.is_none() || !mesh.is_none() || !parallel.is_none() || !rank.is_none();
  if (!box.is_none() && layout_given) {
    throw py::value_error("pass either box=(start, extent) or layout=/mesh=/parallel=/rank=, not both");
  }
  if (!box.is_none()) {
    request.box = to_box(box);
  } else if (layout_given) {
    const LayoutChoice choice = to_layout(layout, mesh, parallel, *request.global_shape);
    const int r = to_rank(rank, choice.mesh);
    request.box = local_box(*request.global_shape, choice.layout, choice.mesh, r);
    // The manifest's rule for the (in, out) Linear-weight presets (docs/layouts.md).
    request.fans_in_out = choice.parallel && colossal_weight_in_out(choice.parallel->mode, choice.name);
  }
  fill_tensor(tensor, initializer, request);
  return tensor;
}

}  // namespace

PYBIND11_MODULE(shardinit, m) {
  m.doc() = "Shard-invariant initialization of model parameters: every element is a pure function of "
            "(seed, stream, global flat index), so any shard filled here is bit-for-bit the same slice of "
            "the whole tensor, and equal to the shardinit CLI's and the C++ library's (docs/python.md).";

  // The library's errors: a bad argument or value is a ValueError, a refused read or write an OSError.
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const Error& e) {
      PyErr_SetString(e.kind() == ErrorKind::io ? PyExc_OSError : PyExc_ValueError, e.what());
    }
  });

  py::module_ init_module = m.def_submodule("init", "The initializers of colossalai.nn.init (same names, "
                                                    "parameters and defaults); each returns an Initializer.");
  register_initializers(init_module);
  // So that `import shardinit.init` and `from shardinit.init import kaiming_uniform_` work too.
  py::module_::import("sys").attr("modules")["shardinit.init"] = init_module;

  m.def("fill_", &fill_, py::arg("tensor"), py::arg("global_shape"), py::arg("initializer"), py::arg("seed"),
        py::arg("name") = py::none(), py::kw_only(), py::arg("box") = py::none(), py::arg("layout") = py::none(),
        py::arg("mesh") = py::none(), py::arg("rank") = py::none(), py::arg("parallel") = py::none(),
        py::arg("fan_in") = py::none(), py::arg("fan_out") = py::none(), py::arg("stream") = py::none(),
        py::arg("dtype") = py::none(), py::arg("threads") = 1,
        R"doc(Fills `tensor` in place with its piece of the global tensor `global_shape` and returns it.

The piece is box=(start, extent), or this rank's box under a layout: layout={tensor_dim: [mesh axes]}
with mesh=[m0, m1, ...], or a Colossal-AI preset name ('linear_col', 'linear', ...) with
parallel={'mode': '1d', 'size': 4}; rank= is this process's rank on the mesh. Without either, the
tensor is the whole global tensor. The stream is stream_from_name(name) unless stream= is given.)doc");

  m.def(
      "local_box",
      [](py::object global_shape, py::object layout, py::object mesh, py::object rank, py::object parallel) {
        const Shape shape = to_shape(global_shape, "global_shape");
        const LayoutChoice choice = to_layout(layout, mesh, parallel, shape);
        return box_tuple(local_box(shape, choice.layout, choice.mesh, to_rank(rank, choice.mesh)));
      },
      py::arg("global_shape"), py::arg("layout"), py::arg("mesh") = py::none(), py::arg("rank") = py::none(),
      py::kw_only(), py::arg("parallel") = py::none(),
      "The box (start, extent) of the global tensor that `rank` holds under `layout` (docs/layouts.md).");

  m.def(
      "colossal_mesh",
      [](py::object parallel) { return colossal_mesh(to_parallel(parallel)).shape(); }, py::arg("parallel"),
      "The process mesh of a Colossal-AI tensor-parallel configuration: {'mode': '2d', 'size': 4} -> [2, 2].");

  m.def(
      "stream_from_name", [](const std::string& name) { return stream_from_name(name); }, py::arg("name"),
      "A tensor's default stream: the 64-bit FNV-1a hash of its UTF-8 name.");

  m.attr("__version__") = std::string(kLibraryVersion);
  m.attr("STREAM_FORMAT_VERSION") = std::string(kStreamFormatVersion);
}
