#include "initializer.hpp"

#include <string>
#include <variant>

#include "arguments.hpp"
#include "fill.hpp"
#include "shardinit/distributions/distribution.hpp"
#include "shardinit/initializers/colossal.hpp"
#include "shardinit/manifest/manifest.hpp"

namespace shardinit::python {
namespace {

std::string float_repr(double value) { return py::repr(py::float_(value)); }

// "kaiming_uniform_(a=2.23606797749979, mode='fan_in', nonlinearity='leaky_relu')": the call that
// makes this initializer.
std::string initializer_repr(const init::Initializer& initializer) {
  const std::string name = std::string(init::kind_name(initializer.kind())) + "_";
  const auto& options = initializer.options();
  std::string arguments;
  if (const auto* o = std::get_if<init::ConstantOptions>(&options)) {
    arguments = "val=" + float_repr(o->value);
  } else if (const auto* o = std::get_if<init::UniformOptions>(&options)) {
    arguments = "a=" + float_repr(o->a) + ", b=" + float_repr(o->b);
  } else if (const auto* o = std::get_if<init::NormalOptions>(&options)) {
    arguments = "mean=" + float_repr(o->mean) + ", std=" + float_repr(o->std);
  } else if (const auto* o = std::get_if<init::TruncNormalOptions>(&options)) {
    arguments = "mean=" + float_repr(o->mean) + ", std=" + float_repr(o->std) + ", a=" + float_repr(o->a) +
                ", b=" + float_repr(o->b);
  } else if (const auto* o = std::get_if<init::KaimingOptions>(&options)) {
    arguments = "a=" + float_repr(o->a) + ", mode='" + std::string(init::fan_mode_name(o->mode)) + "', nonlinearity='" +
                std::string(init::nonlinearity_name(o->nonlinearity)) + "'";
  } else if (const auto* o = std::get_if<init::XavierUniformOptions>(&options)) {
    arguments = "a=" + float_repr(o->a) + ", scale=" + float_repr(o->scale) + ", gain=" + float_repr(o->gain);
  } else if (const auto* o = std::get_if<init::XavierNormalOptions>(&options)) {
    arguments = "scale=" + float_repr(o->scale) + ", gain=" + float_repr(o->gain);
  }
  return "shardinit.init." + name + "(" + arguments + ")";
}

std::string optional_string(py::handle value, const char* what) {
  if (value.is_none()) return {};
  if (!PyUnicode_Check(value.ptr())) throw py::type_error(std::string(what) + " must be a string, got " + python_repr(value));
  std::string text = value.cast<std::string>();
  if (text.empty()) throw py::value_error(std::string(what) + " must not be empty");
  return text;
}

// initializer(tensor, fan_in=None, fan_out=None, *, seed=0, name=None, stream=None, global_shape=None,
// box=None, dtype=None, threads=1): Colossal-AI's initializer call, plus what makes it reproducible.
py::object call_initializer(const init::Initializer& self, py::object tensor, py::object fan_in, py::object fan_out,
                            py::object seed, py::object name, py::object stream, py::object global_shape,
                            py::object box, py::object dtype, int threads) {
  FillRequest request;
  request.seed = to_uint64(seed, "seed");
  request.name = optional_string(name, "name");
  request.arguments.stream = stream;
  request.arguments.fan_in = fan_in;
  request.arguments.fan_out = fan_out;
  if (!global_shape.is_none()) request.global_shape = to_shape(global_shape, "global_shape");
  if (!box.is_none()) request.box = to_box(box);
  request.dtype = to_dtype(dtype);
  request.threads = threads;
  fill_tensor(tensor, self, request);
  return tensor;
}

}  // namespace

void register_initializers(py::module_& m) {
  py::class_<init::Initializer>(m, "Initializer", R"doc(
A Colossal-AI initializer (made by shardinit.init.zeros_(), kaiming_uniform_(), ...).

Calling it fills a tensor in place and returns it:

    initializer(tensor, fan_in=None, fan_out=None, *, seed=0, name=None, stream=None,
                global_shape=None, box=None, dtype=None, threads=1)

tensor: a NumPy array or a PyTorch CPU tensor, contiguous and writable (float32, float64, float16,
torch.bfloat16, or uint16 holding bf16 bits with dtype='bf16').
fan_in / fan_out: the fans (default: from the GLOBAL shape, as PyTorch reads a shape (out, in, *k)).
seed: the run's seed; name: the tensor's name, whose FNV-1a hash is its stream (or stream=).
global_shape / box=(start, extent): the tensor is that box of a global tensor (default: the whole).
Every element is a pure function of (seed, stream, global flat index): bit-identical to the
shardinit CLI and the C++ library for the same definition, whatever the box.)doc")
      .def("__call__", &call_initializer, py::arg("tensor"), py::arg("fan_in") = py::none(),
           py::arg("fan_out") = py::none(), py::kw_only(), py::arg("seed") = 0, py::arg("name") = py::none(),
           py::arg("stream") = py::none(), py::arg("global_shape") = py::none(), py::arg("box") = py::none(),
           py::arg("dtype") = py::none(), py::arg("threads") = 1,
           "Fills `tensor` in place (see the class documentation) and returns it.")
      .def_property_readonly("kind", [](const init::Initializer& self) { return std::string(init::kind_name(self.kind())); },
                             "The initializer's name without the trailing underscore: 'kaiming_uniform'.")
      .def(
          "manifest_init",
          [](const init::Initializer& self) { return py::module_::import("json").attr("loads")(initializer_json(self)); },
          "The manifest's \"init\" object for this initializer, every parameter spelled out: "
          "{'fn': 'kaiming_uniform', 'a': 2.23606797749979, 'mode': 'fan_in', 'nonlinearity': 'leaky_relu'}.")
      .def_property_readonly("uses_fan_in", &init::Initializer::uses_fan_in, "Whether the formula reads fan_in.")
      .def_property_readonly("uses_fan_out", &init::Initializer::uses_fan_out,
                             "Whether the formula reads fan_out (xavier: when known).")
      .def(
          "distribution",
          [](const init::Initializer& self, py::object fan_in, py::object fan_out) {
            return describe(self(to_fans(fan_in, fan_out)));
          },
          py::arg("fan_in") = py::none(), py::arg("fan_out") = py::none(),
          "The distribution these fans give, e.g. 'uniform(a=-0.125, b=0.125)'.")
      .def("__repr__", &initializer_repr);

  // The factories of colossalai.nn.init: same names, parameters and defaults.
  m.def("zeros_", &init::zeros_, "Fills with 0 (torch.nn.init.zeros_).");
  m.def("ones_", &init::ones_, "Fills with 1 (torch.nn.init.ones_).");
  m.def(
      "constant_", [](double val) { return init::constant_({val}); }, py::arg("val"),
      "Fills with `val` (torch.nn.init.constant_; not in colossalai.nn.init).");
  m.def(
      "uniform_", [](double a, double b) { return init::uniform_({a, b}); }, py::arg("a") = 0.0, py::arg("b") = 1.0,
      "uniform(a, b).");
  m.def(
      "normal_", [](double mean, double std) { return init::normal_({mean, std}); }, py::arg("mean") = 0.0,
      py::arg("std") = 1.0, "normal(mean, std).");
  m.def(
      "trunc_normal_", [](double mean, double std, double a, double b) { return init::trunc_normal_({mean, std, a, b}); },
      py::arg("mean") = 0.0, py::arg("std") = 1.0, py::arg("a") = -2.0, py::arg("b") = 2.0,
      "normal(mean, std) truncated to [a, b] (absolute cutoffs).");
  const auto kaiming = [](init::Initializer (*factory)(init::KaimingOptions)) {
    return [factory](double a, const std::string& mode, const std::string& nonlinearity) {
      return factory({a, init::parse_fan_mode(mode), init::parse_nonlinearity(nonlinearity)});
    };
  };
  m.def("kaiming_uniform_", kaiming(&init::kaiming_uniform_), py::arg("a") = 0.0, py::arg("mode") = "fan_in",
        py::arg("nonlinearity") = "leaky_relu",
        "uniform(-bound, bound), bound = sqrt(3) * calculate_gain(nonlinearity, a) / sqrt(fan).");
  m.def("kaiming_normal_", kaiming(&init::kaiming_normal_), py::arg("a") = 0.0, py::arg("mode") = "fan_in",
        py::arg("nonlinearity") = "leaky_relu", "normal(0, calculate_gain(nonlinearity, a) / sqrt(fan)).");
  m.def(
      "xavier_uniform_",
      [](double a, double scale, double gain) { return init::xavier_uniform_({a, scale, gain}); },
      py::arg("a") = init::XavierUniformOptions{}.a, py::arg("scale") = 2.0, py::arg("gain") = 1.0,
      "uniform(-bound, bound), bound = a * gain * sqrt(scale / (fan_in + fan_out)) (fan_out when known).");
  m.def(
      "xavier_normal_", [](double scale, double gain) { return init::xavier_normal_({scale, gain}); },
      py::arg("scale") = 2.0, py::arg("gain") = 1.0,
      "normal(0, gain * sqrt(scale / (fan_in + fan_out))) (fan_out when known).");
  m.def("lecun_uniform_", &init::lecun_uniform_, "uniform(-bound, bound), bound = sqrt(3 / fan_in).");
  m.def("lecun_normal_", &init::lecun_normal_,
        "trunc_normal(0, sqrt(1 / fan_in) / .87962566103423978, -2, 2), as Colossal-AI has it.");
}

}  // namespace shardinit::python
