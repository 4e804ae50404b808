#pragma once
// shardinit.init: the Initializer class and the factories of colossalai.nn.init (zeros_, ...,
// lecun_normal_), whose initializers fill a tensor in place when called.

#include <pybind11/pybind11.h>

namespace shardinit::python {

namespace py = pybind11;

void register_initializers(py::module_& init_module);

}  // namespace shardinit::python
