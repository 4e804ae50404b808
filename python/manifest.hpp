#pragma once
// shardinit.Manifest (a parsed manifest: its tensors, what a rank holds of each, and the fill of one
// tensor's local piece, as the CLI's init writes it), load_manifest, and manifest_from_hf_config (the
// manifest of a Hugging Face config, as `shardinit manifest --hf` prints it). shardinit.torch builds
// fill_module_ on these.

#include <pybind11/pybind11.h>

namespace shardinit::python {

namespace py = pybind11;

void register_manifest(py::module_& m);

}  // namespace shardinit::python
