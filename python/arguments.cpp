#include "arguments.hpp"

#include <Python.h>

#include <algorithm>
#include <climits>
#include <utility>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/manifest/manifest.hpp"
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

}  // namespace

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

namespace {

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

Topology to_topology(py::handle value) {
  if (!PyDict_Check(value.ptr())) {
    throw py::type_error("parallel must be a dict like {\"tensor\": {\"mode\": \"1d\", \"size\": 4}, \"data\": 2} (the "
                         "manifest's \"parallel\") or {\"mode\": \"1d\", \"size\": 4}, got " + python_repr(value));
  }
  py::object config = py::reinterpret_borrow<py::object>(value);
  // The tensor part alone: {"mode": ..., "size": ...} is {"tensor": {"mode": ..., "size": ...}}.
  if (py::reinterpret_borrow<py::dict>(value).contains("mode")) config = py::dict(py::arg("tensor") = config);
  std::string text;
  try {
    text = py::module_::import("json").attr("dumps")(config, py::arg("allow_nan") = false).cast<std::string>();
  } catch (const py::error_already_set& e) {
    throw py::value_error("parallel " + python_repr(value) + " is not JSON data (" + std::string(e.what()) + ")");
  }
  return parse_topology_json(text);
}

JobChoice to_job(py::handle mesh, py::handle parallel, py::handle world) {
  if (!mesh.is_none() && !parallel.is_none()) {
    throw py::value_error("pass either mesh= or parallel=, not both (parallel= defines the mesh)");
  }
  std::optional<int> ranks;
  if (!world.is_none()) {
    const Index w = to_index(world, "world", 1);
    if (w > INT_MAX) throw py::value_error("world must be below 2**31, got " + python_repr(world));
    ranks = static_cast<int>(w);
  }
  if (!parallel.is_none()) {
    const Topology topology = to_topology(parallel);
    const long long inner = static_cast<long long>(topology.pipeline) * topology.tensor.size;
    const long long fallback = inner * topology.data.value_or(1);
    const int w = ranks ? *ranks : static_cast<int>(std::min<long long>(fallback, INT_MAX));
    JobChoice choice{JobContext{static_cast<std::size_t>(topology_axes(topology)), topology}, topology_mesh(topology, w),
                     topology_axis_names(topology)};
    return choice;
  }
  if (!mesh.is_none()) {
    std::vector<int> axes;
    for (const Index size : to_shape(mesh, "mesh")) {
      if (size < 1 || size > INT_MAX) throw py::value_error("mesh " + python_repr(mesh) + " has a dimension < 1 or too large");
      axes.push_back(static_cast<int>(size));
    }
    ProcessMesh process_mesh(std::move(axes));
    if (ranks && *ranks != process_mesh.size()) {
      throw py::value_error("mesh " + process_mesh.to_string() + " has " + std::to_string(process_mesh.size()) + " ranks, but world=" +
                            std::to_string(*ranks));
    }
    const std::size_t n = process_mesh.shape().size();
    return JobChoice{JobContext{n, std::nullopt}, std::move(process_mesh), std::vector<std::string>(n)};
  }
  if (ranks) return JobChoice{JobContext{1, std::nullopt}, ProcessMesh({*ranks}), {""}};
  throw py::value_error("a layout needs the process mesh: pass parallel={\"tensor\": {\"mode\": ..., \"size\": ...}, ...}, "
                        "mesh=[m0, m1, ...] or world=N");
}

LayoutSpec to_layout_spec(py::handle layout, const Shape& shape, const std::vector<std::string>& axis_names) {
  LayoutSpec spec;
  if (layout.is_none()) return spec;
  if (PyUnicode_Check(layout.ptr())) {
    spec.kind = LayoutSpec::Kind::preset;
    spec.preset = layout.cast<std::string>();
    return spec;
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
  spec.kind = LayoutSpec::Kind::custom;
  spec.shard.assign(shape.size(), {});
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
    auto& dim_axes = spec.shard[static_cast<std::size_t>(dim)];
    if (!dim_axes.empty()) throw py::value_error("layout names dimension " + std::to_string(dim) + " twice");
    // An axis: its number, or its name ("dp", "tp", ... under parallel=). {0: 1} is {0: [1]}.
    const auto axis_of = [&](py::handle item, const std::string& at) {
      if (PyUnicode_Check(item.ptr())) {
        const std::string name = item.cast<std::string>();
        const auto it = name.empty() ? axis_names.end() : std::find(axis_names.begin(), axis_names.end(), name);
        if (it == axis_names.end()) {
          std::string known;
          for (const auto& n : axis_names) {
            if (!n.empty()) known += (known.empty() ? "'" : ", '") + n + "'";
          }
          throw py::value_error(at + ": mesh axis '" + name + "' does not exist" +
                                (known.empty() ? std::string(": the mesh's axes have no names") : " (the mesh's axes are " + known + ")"));
        }
        return static_cast<int>(it - axis_names.begin());
      }
      const Index axis = to_index(item, at, 0);
      return static_cast<int>(std::min<Index>(axis, INT_MAX));
    };
    if (PyUnicode_Check(axes.ptr()) || (PyLong_Check(axes.ptr()) && !PyBool_Check(axes.ptr()))) {
      dim_axes.push_back(axis_of(axes, what));
    } else {
      const std::vector<py::object> items = sequence_items(axes, what, "a mesh axis or a sequence of them");
      for (std::size_t i = 0; i < items.size(); ++i) dim_axes.push_back(axis_of(items[i], what + "[" + std::to_string(i) + "]"));
    }
  }
  return spec;
}

void apply_definition_arguments(const DefinitionArguments& a, const std::vector<std::string>& axis_names, TensorDefinition& d) {
  d.fans = to_fans(a.fan_in, a.fan_out);
  if (!a.fan_convention.is_none()) {
    if (!PyUnicode_Check(a.fan_convention.ptr())) throw py::type_error("fan_convention must be a string, got " + python_repr(a.fan_convention));
    d.fan_convention = init::parse_fan_convention(a.fan_convention.cast<std::string>());
  }
  if (!a.stream.is_none()) d.stream = to_uint64(a.stream, "stream");
  if (!a.padding_idx.is_none()) {
    const py::int_ integer = as_integer(a.padding_idx, "padding_idx", "an integer");
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(integer.ptr(), &overflow);
    if (overflow != 0) throw py::value_error("padding_idx " + python_repr(a.padding_idx) + " is too large");
    d.padding_idx = v;
  }
  d.layout = to_layout_spec(a.layout, d.shape, axis_names);
  const auto small = [](Index v, const char* what) {
    if (v > INT_MAX) throw py::value_error(std::string(what) + " " + std::to_string(v) + " does not exist: a pipeline has at most 2**20 " + what + "s");
    return static_cast<int>(v);
  };
  if (!a.stage.is_none()) {
    d.stages.emplace();
    // One stage: anything operator.index takes (a Python or NumPy integer); else a sequence of them.
    PyObject* index = PyBool_Check(a.stage.ptr()) ? nullptr : PyNumber_Index(a.stage.ptr());
    if (index == nullptr) PyErr_Clear();
    const bool single = index != nullptr;
    Py_XDECREF(index);
    if (single) {
      d.stages->push_back(small(to_index(a.stage, "stage", 0), "stage"));
    } else {
      for (const Index s : to_shape(a.stage, "stage")) d.stages->push_back(small(s, "stage"));
    }
  }
  if (!a.layer.is_none()) d.layer = small(to_index(a.layer, "layer", 0), "layer");
  if (!a.data_partition.is_none()) {
    if (!PyUnicode_Check(a.data_partition.ptr())) throw py::type_error("data_partition must be a string, got " + python_repr(a.data_partition));
    d.data_partition = parse_data_partition(a.data_partition.cast<std::string>());
  }
  if (!a.fused.is_none()) {  // the manifest's "fused": {'dim': d, 'parts': k}
    if (!PyDict_Check(a.fused.ptr())) throw py::type_error("fused must be {'dim': d, 'parts': k}, got " + python_repr(a.fused));
    const py::dict fused = py::reinterpret_borrow<py::dict>(a.fused);
    for (const auto& [key, value] : fused) {
      const std::string k = py::str(key);
      if (k != "dim" && k != "parts") throw py::value_error("fused: unknown key " + python_repr(key) + " (expected 'dim' and 'parts')");
    }
    if (!fused.contains("dim") || !fused.contains("parts")) throw py::value_error("fused needs both 'dim' and 'parts', got " + python_repr(a.fused));
    d.fused = FusedParts{static_cast<std::size_t>(to_index(fused["dim"], "fused dim", 0)), to_index(fused["parts"], "fused parts", 1)};
  }
  if (!a.expert.is_none()) {
    if (PyDict_Check(a.expert.ptr())) {  // one whole expert, as the manifest's {"index": e, "of": N}
      const py::dict whole = py::reinterpret_borrow<py::dict>(a.expert);
      for (const auto& [key, value] : whole) {
        const std::string k = py::str(key);
        if (k != "index" && k != "of") throw py::value_error("expert: unknown key " + python_repr(key) + " (expected 'index' and 'of')");
      }
      if (!whole.contains("index") || !whole.contains("of")) {
        throw py::value_error("expert: a whole expert needs both 'index' and 'of', got " + python_repr(a.expert));
      }
      d.whole_expert = WholeExpert{to_index(whole["index"], "expert index", 0), to_index(whole["of"], "expert of", 0)};
    } else if (PyBool_Check(a.expert.ptr())) {
      d.expert = a.expert.ptr() == Py_True;
    } else {
      throw py::type_error("expert must be True or False (a stack of experts along dimension 0) or {'index': e, 'of': N} "
                           "(one whole expert), got " + python_repr(a.expert));
    }
  }
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
