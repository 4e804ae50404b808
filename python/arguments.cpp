#include "arguments.hpp"

#include <Python.h>

#include <climits>
#include <utility>
#include <vector>

#include "shardinit/error.hpp"
#include "text.hpp"

namespace shardinit::python {
namespace {

std::string type_of(py::handle value) { return Py_TYPE(value.ptr())->tp_name; }

// operator.index(value): Python ints, NumPy integers, 0-d integer tensors; not floats or strings.
py::int_ as_integer(py::handle value, std::string_view what, std::string_view expected) {
  if (PyBool_Check(value.ptr())) {
    throw py::type_error(std::string(what) + " must be " + std::string(expected) + ", got " + python_repr(value));
  }
  PyObject* index = PyNumber_Index(value.ptr());
  if (index == nullptr) {
    PyErr_Clear();
    throw py::type_error(std::string(what) + " must be " + std::string(expected) + ", got " + python_repr(value) +
                         " (" + type_of(value) + ")");
  }
  return py::reinterpret_steal<py::int_>(index);
}

Index to_index(py::handle value, std::string_view what, Index minimum) {
  const std::string expected = minimum > 0 ? "a positive integer" : "a non-negative integer";
  const py::int_ integer = as_integer(value, what, expected);
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(integer.ptr(), &overflow);
  if (overflow != 0 || v < minimum) {
    throw py::value_error(std::string(what) + " must be " + expected + (overflow != 0 ? " below 2**63" : "") +
                          ", got " + python_repr(value));
  }
  return static_cast<Index>(v);
}

// The items of a sequence that is not a string (a string is a sequence of characters, never a shape).
std::vector<py::object> sequence_items(py::handle value, std::string_view what, std::string_view expected) {
  if (PyUnicode_Check(value.ptr()) || PyBytes_Check(value.ptr()) || PySequence_Check(value.ptr()) != 1) {
    throw py::type_error(std::string(what) + " must be " + std::string(expected) + ", got " + python_repr(value) +
                         " (" + type_of(value) + ")");
  }
  const py::sequence sequence = py::reinterpret_borrow<py::sequence>(value);
  std::vector<py::object> items;
  for (std::size_t i = 0; i < sequence.size(); ++i) items.push_back(sequence[i]);
  return items;
}

std::string key_string(py::handle key) { return PyUnicode_Check(key.ptr()) ? key.cast<std::string>() : python_repr(key); }

}  // namespace

std::string python_repr(py::handle value) {
  try {
    return py::repr(value);
  } catch (const py::error_already_set&) {
    return std::string("<") + type_of(value) + ">";
  }
}

std::uint64_t to_uint64(py::handle value, std::string_view what) {
  const py::int_ integer = as_integer(value, what, "an integer in [0, 2**64)");
  const unsigned long long v = PyLong_AsUnsignedLongLong(integer.ptr());
  if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred() != nullptr) {
    PyErr_Clear();
    throw py::value_error(std::string(what) + " must be an integer in [0, 2**64), got " + python_repr(value));
  }
  return v;
}

Shape to_shape(py::handle value, std::string_view what) {
  const std::vector<py::object> items = sequence_items(value, what, "a sequence of non-negative integers");
  Shape shape;
  for (std::size_t i = 0; i < items.size(); ++i) {
    shape.push_back(to_index(items[i], std::string(what) + "[" + std::to_string(i) + "]", 0));
  }
  (void)element_count(shape);  // at most 2**63 - 1 elements: Error(invalid_argument) otherwise
  return shape;
}

Box to_box(py::handle value) {
  const std::vector<py::object> parts = sequence_items(value, "box", "a pair (start, extent) of integer sequences");
  if (parts.size() != 2) {
    throw py::value_error("box must be a pair (start, extent), got " + python_repr(value));
  }
  Box box{to_shape(parts[0], "box start"), to_shape(parts[1], "box extent")};
  if (box.start.size() != box.extent.size()) {
    throw py::value_error("box start " + tuple_string(box.start) + " and extent " + tuple_string(box.extent) +
                          " have different lengths");
  }
  return box;
}

init::Fans to_fans(py::handle fan_in, py::handle fan_out) {
  init::Fans fans;
  if (!fan_in.is_none()) fans.fan_in = to_index(fan_in, "fan_in", 1);
  if (!fan_out.is_none()) fans.fan_out = to_index(fan_out, "fan_out", 1);
  return fans;
}

std::optional<DType> to_dtype(py::handle value) {
  if (value.is_none()) return std::nullopt;
  std::string text = py::str(value);
  if (text.rfind("torch.", 0) == 0) text.erase(0, 6);
  static const std::pair<const char*, DType> aliases[] = {
      {"f32", DType::f32},       {"f64", DType::f64},       {"bf16", DType::bf16},      {"f16", DType::f16},
      {"float32", DType::f32},   {"float64", DType::f64},   {"bfloat16", DType::bf16},  {"float16", DType::f16},
  };
  for (const auto& [name, dtype] : aliases) {
    if (text == name) return dtype;
  }
  throw py::value_error("dtype must be 'f32', 'f64', 'bf16' or 'f16' (or 'float32', 'float64', 'bfloat16', "
                        "'float16'), got " + python_repr(value));
}

TensorParallelConfig to_parallel(py::handle value) {
  if (!PyDict_Check(value.ptr())) {
    throw py::type_error("parallel must be a dict like {\"mode\": \"1d\", \"size\": 4}, got " + python_repr(value));
  }
  py::dict config = py::reinterpret_borrow<py::dict>(value);
  // The manifest's form {"tensor": {...}} too, so that a manifest's "parallel" can be passed as is.
  if (config.size() == 1 && config.contains("tensor") && PyDict_Check(py::object(config["tensor"]).ptr())) {
    config = py::reinterpret_borrow<py::dict>(config["tensor"]);
  }
  for (const auto& [key, item] : config) {
    const std::string name = key_string(key);
    if (name != "mode" && name != "size" && name != "depth") {
      throw py::value_error("parallel: unknown key " + python_repr(key) + " (expected \"mode\", \"size\", \"depth\")");
    }
  }
  if (!config.contains("mode") || !config.contains("size")) {
    throw py::value_error("parallel needs \"mode\" and \"size\", got " + python_repr(value));
  }
  TensorParallelConfig result;
  const py::object mode = config["mode"];
  if (!PyUnicode_Check(mode.ptr())) throw py::type_error("parallel[\"mode\"] must be a string, got " + python_repr(mode));
  result.mode = parse_tensor_parallel_mode(mode.cast<std::string>());
  const auto small = [&](const char* key, int default_value) {
    if (!config.contains(key)) return default_value;
    const Index v = to_index(config[key], std::string("parallel[\"") + key + "\"]", 1);
    if (v > (1 << 20)) {
      throw py::value_error(std::string("parallel[\"") + key + "\"] must be between 1 and 2**20, got " + std::to_string(v));
    }
    return static_cast<int>(v);
  };
  result.size = small("size", 1);
  result.depth = small("depth", 1);
  (void)colossal_mesh(result);  // size a square / cube / q^2 * depth: Error(invalid_argument) otherwise
  return result;
}

LayoutChoice to_layout(py::handle layout, py::handle mesh, py::handle parallel, const Shape& shape) {
  std::optional<TensorParallelConfig> config;
  if (!parallel.is_none()) config = to_parallel(parallel);
  std::optional<ProcessMesh> process_mesh;
  if (!mesh.is_none()) {
    std::vector<int> axes;
    for (const Index size : to_shape(mesh, "mesh")) {
      if (size < 1 || size > INT_MAX) throw py::value_error("mesh " + python_repr(mesh) + " has a dimension < 1 or too large");
      axes.push_back(static_cast<int>(size));
    }
    process_mesh = ProcessMesh(std::move(axes));
  }
  if (config) {
    ProcessMesh colossal = colossal_mesh(*config);
    if (process_mesh && process_mesh->shape() != colossal.shape()) {
      throw py::value_error("mesh " + process_mesh->to_string() + " is not the mesh of parallel " + python_repr(parallel) +
                            ", which is " + colossal.to_string() + " (leave mesh= out with parallel=)");
    }
    process_mesh = std::move(colossal);
  }
  if (!process_mesh) {
    throw py::value_error("a layout needs the process mesh: pass mesh=[m0, m1, ...] or parallel={\"mode\": ..., \"size\": ...}");
  }

  LayoutChoice choice{*process_mesh, TensorLayout::replicated(shape.size()), "replicate", config};
  if (layout.is_none()) return choice;
  if (PyUnicode_Check(layout.ptr())) {
    choice.name = layout.cast<std::string>();
    if (choice.name == "replicate") return choice;
    if (!config) {
      throw py::value_error("layout '" + choice.name + "' is a Colossal-AI preset: it needs parallel={\"mode\": ..., "
                            "\"size\": ...} (with a plain mesh=, use 'replicate' or a dict {tensor_dim: [mesh axes]})");
    }
    choice.layout = colossal_layout(*config, choice.name, shape);
    return choice;
  }
  if (!PyDict_Check(layout.ptr())) {
    throw py::type_error("layout must be a dict {tensor_dim: [mesh axes]}, 'replicate' or a Colossal-AI preset name, got " +
                         python_repr(layout));
  }
  py::dict shard = py::reinterpret_borrow<py::dict>(layout);
  // The manifest's form {"shard": {...}} too.
  if (shard.size() == 1 && shard.contains("shard") && PyDict_Check(py::object(shard["shard"]).ptr())) {
    shard = py::reinterpret_borrow<py::dict>(shard["shard"]);
  }
  choice.name = "custom";
  for (const auto& [key, axes] : shard) {
    // Keys are tensor dimensions: ints, or strings of digits as in the manifest's JSON.
    Index dim = -1;
    if (PyUnicode_Check(key.ptr())) {
      const std::string text = key.cast<std::string>();
      if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() < 10) dim = std::stoll(text);
    } else if (!PyBool_Check(key.ptr())) {
      PyObject* index = PyNumber_Index(key.ptr());
      if (index != nullptr) {
        dim = PyLong_AsLongLong(index);
        Py_DECREF(index);
      }
      PyErr_Clear();
    }
    if (dim < 0 || dim >= static_cast<Index>(shape.size())) {
      throw py::value_error("layout key " + python_repr(key) + " is not a dimension of shape " + tuple_string(shape) +
                            (shape.empty() ? " (a scalar cannot be split)"
                                           : " (expected 0.." + std::to_string(shape.size() - 1) + ")"));
    }
    const std::string what = "layout[" + python_repr(key) + "]";
    std::vector<Index> mesh_axes;
    if (PyLong_Check(axes.ptr()) && !PyBool_Check(axes.ptr())) {
      mesh_axes.push_back(to_index(axes, what, 0));  // {0: 1} is {0: [1]}
    } else {
      mesh_axes = to_shape(axes, what);
    }
    auto& dim_axes = choice.layout.dim_axes[static_cast<std::size_t>(dim)];
    if (!dim_axes.empty()) throw py::value_error("layout names dimension " + std::to_string(dim) + " twice");
    for (const Index axis : mesh_axes) {
      if (axis >= static_cast<Index>(choice.mesh.shape().size())) {
        throw py::value_error(what + ": mesh axis " + std::to_string(axis) + " does not exist: the mesh " +
                              choice.mesh.to_string() + " has " + std::to_string(choice.mesh.shape().size()) +
                              (choice.mesh.shape().size() == 1 ? " axis" : " axes"));
      }
      dim_axes.push_back(static_cast<int>(axis));
    }
  }
  check_layout(choice.layout, shape.size(), choice.mesh);  // each mesh axis once: Error(invalid_argument)
  return choice;
}

int to_rank(py::handle rank, const ProcessMesh& mesh) {
  if (rank.is_none()) {
    throw py::value_error("rank= is required with a layout: this process's rank on the mesh " + mesh.to_string() +
                          " (0.." + std::to_string(mesh.size() - 1) + ")");
  }
  const Index value = to_index(rank, "rank", 0);
  if (value >= mesh.size()) {
    throw py::value_error("rank " + std::to_string(value) + " is outside the mesh " + mesh.to_string() + " (" +
                          std::to_string(mesh.size()) + " ranks: 0.." + std::to_string(mesh.size() - 1) + ")");
  }
  return static_cast<int>(value);
}

}  // namespace shardinit::python
