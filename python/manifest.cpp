#include "manifest.hpp"

#include <algorithm>
#include <climits>
#include <memory>
#include <string>

#include <pybind11/stl.h>

#include "fill.hpp"
#include "shardinit/error.hpp"
#include "shardinit/layout/shard.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/models/hf_model.hpp"
#include "tensor_access.hpp"
#include "text.hpp"

namespace shardinit::python {
namespace {

// A parsed manifest, shared by the Python objects that refer to it.
struct PyManifest {
  std::shared_ptr<const Manifest> manifest;

  [[nodiscard]] const ManifestTensor& tensor(const std::string& name) const {
    const auto& ts = manifest->tensors;
    const auto it = std::find_if(ts.begin(), ts.end(), [&](const ManifestTensor& t) { return t.name == name; });
    if (it == ts.end()) throw py::key_error("the manifest has no tensor '" + name + "'");
    return *it;
  }
};

PyManifest parse(const std::string& text, const std::string& source) {
  return PyManifest{std::make_shared<const Manifest>(parse_manifest(text, source))};
}

// A text argument that may be a path (str or os.PathLike) or JSON text: JSON when a str starts with '{'.
bool is_json_text(py::handle value) {
  if (!PyUnicode_Check(value.ptr())) return false;
  const std::string text = value.cast<std::string>();
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string::npos && text[first] == '{';
}

std::string read_text_file(py::handle path) {
  const std::string p = py::str(py::module_::import("os").attr("fsdecode")(path));
  py::object file = py::module_::import("builtins").attr("open")(p, "r", py::arg("encoding") = "utf-8");
  py::object text = file.attr("read")();
  file.attr("close")();
  return text.cast<std::string>();
}

// world= and rank= of a run: 1 <= world, 0 <= rank < world.
struct RunPlace {
  int world = 1;
  int rank = 0;
};
RunPlace run_place(py::object world, py::object rank) {
  RunPlace place;
  const std::uint64_t w = to_uint64(world, "world");
  if (w < 1 || w > static_cast<std::uint64_t>(INT_MAX)) throw py::value_error("world must be between 1 and 2**31 - 1, got " + python_repr(world));
  place.world = static_cast<int>(w);
  const std::uint64_t r = to_uint64(rank, "rank");
  if (r >= w) {
    throw py::value_error("rank " + python_repr(rank) + " is outside the world of " + std::to_string(w) + " ranks (0.." +
                          std::to_string(w - 1) + ")");
  }
  place.rank = static_cast<int>(r);
  return place;
}

RankHolding holding_of(const ManifestTensor& t, const ProcessMesh& mesh, int rank) {
  return RankHolding{local_holding(t.shape, t.layout, mesh, rank), holds(t.layout, mesh, rank)};
}

// What a rank's tensor must look like: the box's extent, or (zero3) the held range as a 1-d tensor.
py::tuple local_shape(const ManifestTensor& t, const RankHolding& h) {
  if (!h.held) return py::tuple(py::cast(std::vector<Index>(t.shape.size(), 0)));
  return py::tuple(py::cast(h.holding.local_shape(t.layout)));
}

py::dict holding_entry(const ManifestTensor& t, const RankHolding& h) {
  py::dict d;
  d["name"] = t.name;
  d["shape"] = py::tuple(py::cast(t.shape));
  d["dtype"] = std::string(dtype_name(t.dtype));
  d["holds"] = h.held;
  d["local_shape"] = local_shape(t, h);
  d["box"] = py::make_tuple(py::tuple(py::cast(h.holding.box.start)), py::tuple(py::cast(h.holding.box.extent)));
  d["first"] = h.holding.first;
  d["count"] = h.held ? h.holding.count : 0;
  d["buffer"] = h.held ? h.holding.buffer : 0;
  d["zero3"] = h.holding.flat;
  d["layout"] = t.layout.to_string();  // who holds it: "{0: [3]} on expert rank 1 of axis 1", ...
  return d;
}

py::object fill_named(const PyManifest& self, py::object tensor, const std::string& name, py::object world, py::object rank,
                      int threads) {
  const ManifestTensor& t = self.tensor(name);
  const RunPlace place = run_place(world, rank);
  const std::string label = "tensor '" + name + "'";
  const WritableTensor target = with_label(label, [&] { return WritableTensor::acquire(tensor); });
  // The manifest decides the dtype; a uint16 array may hold bf16 or f16 patterns.
  const DType own = with_label(label, [&] {
    try {
      return target.fill_dtype(std::nullopt);
    } catch (const py::type_error&) {
      return target.fill_dtype(t.dtype);  // raw 16-bit patterns: taken as the manifest's dtype, or refused
    }
  });
  if (own != t.dtype) {
    throw py::type_error(label + ": the manifest gives it dtype " + std::string(dtype_name(t.dtype)) + ", but the tensor is " +
                         target.dtype_name());
  }
  const ProcessMesh mesh = manifest_mesh(*self.manifest, place.world);
  const RankHolding h = holding_of(t, mesh, place.rank);
  const std::string mismatch = " is not what rank " + std::to_string(place.rank) + " of " + std::to_string(place.world) +
                               " holds: " + tuple_string(h.holding.box.extent) + " of " + tuple_string(t.shape) + " (" +
                               t.layout.to_string() + ")";
  fill_held(target, label, t, h, FillSettings{self.manifest->seed, threads}, mismatch);
  return tensor;
}

ModelInit model_init(const std::string& init) {
  if (init == "hf") return ModelInit::hf;
  if (init == "colossal") return ModelInit::colossal;
  throw py::value_error("init must be 'hf' or 'colossal', got '" + init + "'");
}

int positive(py::handle value, const char* what) {
  const Index v = to_index(value, what, 1);  // one message for every bad value: "must be a positive integer"
  if (v > INT_MAX) throw py::value_error(std::string(what) + " must be a positive integer below 2**31, got " + python_repr(value));
  return static_cast<int>(v);
}

}  // namespace

void register_manifest(py::module_& m) {
  py::class_<PyManifest>(m, "Manifest", R"doc(
A parsed manifest (docs/manifest.md): every tensor's definition, checked up front.

    shardinit.Manifest(text)            # JSON text
    shardinit.load_manifest(path)       # a file
    manifest.fill_(tensor, name, *, world=1, rank=0, threads=1)

fill_ fills `tensor` with what rank `rank` of a run on `world` ranks holds of the manifest's tensor
`name`: the values of the CLI's `init` for that manifest, bit for bit.)doc")
      .def(py::init([](const std::string& text, const std::string& source) { return parse(text, source); }), py::arg("text"),
           py::arg("source") = "<string>", "Parses manifest JSON text; `source` names it in messages.")
      .def_property_readonly("seed", [](const PyManifest& self) { return self.manifest->seed; })
      .def_property_readonly(
          "names",
          [](const PyManifest& self) {
            py::list out;
            for (const ManifestTensor& t : self.manifest->tensors) out.append(t.name);
            return out;
          },
          "The tensors' names, in manifest order.")
      .def_property_readonly(
          "tensors",
          [](const PyManifest& self) {
            py::list out;
            for (const ManifestTensor& t : self.manifest->tensors) out.append(resolved_dict(t));
            return out;
          },
          "Every tensor as resolved: the dicts of shardinit.resolve().")
      .def_property_readonly("digest", [](const PyManifest& self) { return manifest_digest(*self.manifest); },
                             "sha256 of what decides the values (the files' shardinit.spec_digest).")
      .def(
          "holdings",
          [](const PyManifest& self, py::object world, py::object rank) {
            const RunPlace place = run_place(world, rank);
            const ProcessMesh mesh = manifest_mesh(*self.manifest, place.world);
            py::list out;
            for (const ManifestTensor& t : self.manifest->tensors) out.append(holding_entry(t, holding_of(t, mesh, place.rank)));
            return out;
          },
          py::arg("world") = 1, py::arg("rank") = 0,
          "What rank holds of every tensor in a run on world ranks, in manifest order: dicts with name, shape, dtype, "
          "holds (false for another stage's tensor), local_shape (the tensor it fills: the box's extent, or (count,) "
          "under zero3), box, first, count, buffer and zero3.")
      .def("fill_", &fill_named, py::arg("tensor"), py::arg("name"), py::kw_only(), py::arg("world") = 1, py::arg("rank") = 0,
           py::arg("threads") = 1,
           "Fills `tensor` in place with what `rank` of a run on `world` ranks holds of the tensor `name` (its "
           "local_shape; under zero3 also the whole partition, padding zeroed); returns it. The dtype must be the "
           "manifest's.")
      .def("__len__", [](const PyManifest& self) { return self.manifest->tensors.size(); })
      .def("__repr__", [](const PyManifest& self) {
        return "<shardinit.Manifest of " + std::to_string(self.manifest->tensors.size()) + " tensors, seed " +
               std::to_string(self.manifest->seed) + ">";
      });

  m.def(
      "load_manifest",
      [](py::object path) {
        const std::string p = py::str(py::module_::import("os").attr("fsdecode")(path));
        // The CLI's checks: a regular file (a FIFO is refused without blocking), the size limit.
        return PyManifest{std::make_shared<const Manifest>(load_manifest(p))};
      },
      py::arg("path"), "Reads and parses a manifest file: a shardinit.Manifest.");

  m.def(
      "manifest_from_hf_config",
      [](py::object config, const std::string& init, py::object tp, py::object pp, py::object dp, py::object ep,
         py::object dtype, py::object seed) {
        std::string text;
        std::string source = "<config>";
        if (PyDict_Check(config.ptr())) {
          text = py::module_::import("json").attr("dumps")(config).cast<std::string>();
        } else if (is_json_text(config)) {
          text = config.cast<std::string>();
        } else {
          source = py::str(py::module_::import("os").attr("fsdecode")(config));
          text = read_text_file(config);
        }
        HfManifestOptions options;
        options.init = model_init(init);
        options.seed = to_uint64(seed, "seed");
        options.tensor_parallel = positive(tp, "tp");
        options.pipeline_parallel = positive(pp, "pp");
        if (!dp.is_none()) options.data_parallel = positive(dp, "dp");
        options.expert_parallel = positive(ep, "ep");
        options.dtype = to_dtype(dtype);
        return manifest_from_hf_config(text, options, source);
      },
      py::arg("config"), py::kw_only(), py::arg("init") = "hf", py::arg("tp") = 1, py::arg("pp") = 1, py::arg("dp") = py::none(),
      py::arg("ep") = 1, py::arg("dtype") = py::none(), py::arg("seed") = 42,
      "The manifest (JSON text) of a Hugging Face model from its config: a dict, JSON text (a str starting with '{') "
      "or a config.json path; as `shardinit manifest --hf CONFIG --init ... --tp ... --pp ... --dp ... --ep ... --dtype ... "
      "--seed ...` prints it (docs/models.md).");
}

}  // namespace shardinit::python
