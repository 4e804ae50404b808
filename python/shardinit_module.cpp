// The Python module `shardinit` (docs/python.md): Colossal-AI style initializers (shardinit.init) and
// a lower-level fill_ that fill NumPy arrays and PyTorch CPU tensors in place, shard by shard, with
// exactly the values of the CLI and the C++ library.

#include <climits>
#include <exception>
#include <string>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arguments.hpp"
#include "fill.hpp"
#include "initializer.hpp"
#include "manifest.hpp"
#include "shardinit/engine/stream.hpp"
#include "shardinit/error.hpp"
#include "shardinit/layout/colossal_presets.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/layout/topology.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/version.hpp"

namespace py = pybind11;
using namespace shardinit;
using namespace shardinit::python;

namespace {

py::tuple box_tuple(const Box& box) {
  return py::make_tuple(py::tuple(py::cast(box.start)), py::tuple(py::cast(box.extent)));
}

py::dict holding_dict(const Holding& h, bool held) {
  py::dict d;
  d["holds"] = held;
  d["box"] = box_tuple(h.box);
  d["first"] = h.first;  // in the box's row-major order
  d["count"] = h.count;
  d["buffer"] = h.buffer;  // zero3: the partition with its padding
  d["zero3"] = h.flat;
  return d;
}

// The keyword arguments every placement function takes, in one place.
struct Keywords {
  py::object name, layout, mesh, rank, parallel, world, stage, layer, data_partition, expert, fan_in, fan_out,
      fan_convention, padding_idx, stream, fused;
};

FillRequest request_from(py::object seed, py::object global_shape, const Keywords& k) {
  FillRequest request;
  request.seed = to_uint64(seed, "seed");
  if (!k.name.is_none()) {
    if (!PyUnicode_Check(k.name.ptr())) throw py::type_error("name must be a string, got " + python_repr(k.name));
    request.name = k.name.cast<std::string>();
  }
  request.global_shape = to_shape(global_shape, "global_shape");
  request.arguments = DefinitionArguments{k.fan_in, k.fan_out, k.fan_convention, k.stream, k.padding_idx,
                                          k.layout, k.stage, k.layer, k.data_partition, k.expert, k.fused};
  request.placement = Placement{k.mesh, k.parallel, k.world, k.rank};
  return request;
}

#define SHARDINIT_PLACEMENT_ARGS                                                                                      \
  py::arg("layout") = py::none(), py::arg("mesh") = py::none(), py::arg("rank") = py::none(),                       \
      py::arg("parallel") = py::none(), py::arg("world") = py::none(), py::arg("stage") = py::none(),                \
      py::arg("layer") = py::none(), py::arg("data_partition") = py::none(), py::arg("expert") = py::none(),         \
      py::arg("fan_in") = py::none(), py::arg("fan_out") = py::none(), py::arg("fan_convention") = py::none(),      \
      py::arg("padding_idx") = py::none(), py::arg("stream") = py::none(), py::arg("fused") = py::none()

py::object fill_(py::object tensor, py::object global_shape, const init::Initializer& initializer, py::object seed,
                 py::object name, py::object box, py::object layout, py::object mesh, py::object rank, py::object parallel,
                 py::object world, py::object stage, py::object layer, py::object data_partition, py::object expert,
                 py::object fan_in, py::object fan_out, py::object fan_convention, py::object padding_idx, py::object stream,
                 py::object fused, py::object dtype, int threads) {
  FillRequest request = request_from(seed, global_shape, {name, layout, mesh, rank, parallel, world, stage, layer, data_partition,
                                                          expert, fan_in, fan_out, fan_convention, padding_idx, stream, fused});
  request.dtype = to_dtype(dtype);
  request.threads = threads;
  if (!box.is_none()) request.box = to_box(box);
  fill_tensor(tensor, initializer, request);
  return tensor;
}

// What this rank holds of a tensor under a placement, without filling anything.
py::dict placed_holding(py::object global_shape, py::object layout, py::object mesh, py::object rank, py::object parallel,
                        py::object world, py::object stage, py::object layer, py::object data_partition, py::object expert,
                        py::object name, py::object fused) {
  const py::object label = name.is_none() ? py::object(py::str("tensor")) : name;
  FillRequest request = request_from(py::int_(0), global_shape, {label, layout, mesh, rank, parallel,
                                                                 world, stage, layer, data_partition, expert, py::none(),
                                                                 py::none(), py::none(), py::none(), py::none(), fused});
  if (!request.placement.given(request.arguments)) request.placement.world = py::int_(1);
  const Resolved resolved = resolve_request(init::zeros_(), request, *request.global_shape, DType::f32);
  const auto [h, held] = request_holding(resolved, request);
  return holding_dict(h, held);
}


py::dict coordinates_dict(const ParallelCoordinates& c) {
  py::dict d;
  d["dp"] = c.data;
  d["pp"] = c.pipeline;
  d["tp"] = c.tensor;
  d["ep"] = c.expert;
  d["edp"] = c.expert_data;
  return d;
}

int world_of(py::object world) {
  const std::uint64_t w = to_uint64(world, "world");
  if (w < 1 || w > static_cast<std::uint64_t>(INT_MAX)) throw py::value_error("world must be between 1 and 2**31 - 1, got " + python_repr(world));
  return static_cast<int>(w);
}

int rank_in(py::object rank, int world) {
  const std::uint64_t r = to_uint64(rank, "rank");
  if (r >= static_cast<std::uint64_t>(world)) {
    throw py::value_error("rank " + python_repr(rank) + " is outside the world of " + std::to_string(world) + " ranks (0.." +
                          std::to_string(world - 1) + ")");
  }
  return static_cast<int>(r);
}

// parallel=, world= and rank= of the job functions: a topology that fits the world, a rank inside it.
struct RankOnJob {
  Topology topology;
  int world;
  int rank;
};
RankOnJob rank_on_job(py::object parallel, py::object world, py::object rank) {
  RankOnJob job{to_topology(parallel), world_of(world), 0};
  (void)topology_data_size(job.topology, job.world);  // fits: Error(invalid_argument) naming the sizes otherwise
  job.rank = rank_in(rank, job.world);
  return job;
}

}  // namespace

PYBIND11_MODULE(_shardinit, m) {
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
  register_manifest(m);
  // So that `import shardinit.init` and `from shardinit.init import kaiming_uniform_` work too.
  py::module_::import("sys").attr("modules")["shardinit.init"] = init_module;

  m.def("fill_", &fill_, py::arg("tensor"), py::arg("global_shape"), py::arg("initializer"), py::arg("seed"),
        py::arg("name") = py::none(), py::kw_only(), py::arg("box") = py::none(), SHARDINIT_PLACEMENT_ARGS,
        py::arg("dtype") = py::none(), py::arg("threads") = 1,
        R"doc(Fills `tensor` in place with what this rank holds of the global tensor `global_shape`; returns it.

The piece is box=(start, extent), or this rank's holding under a placement: parallel= (the manifest's
"parallel": {"tensor": {"mode": "1d", "size": 4}, "data": 2, "pipeline": 2, "expert": 2, "order": [...],
"data_partition": "zero3"}; or just {"mode": "1d", "size": 4}) or mesh=[m0, m1, ...], on world= ranks,
rank= this process's rank; layout= a Colossal-AI preset ('linear_col', 'linear', ...), 'replicate' or
{tensor_dim: [mesh axes]}; stage= / layer=, data_partition= ('zero3', 'fsdp2', 'none') and expert=
as the manifest's keys. Under zero3 the tensor is 1-d: the held elements, or the whole partition (the
padding after them is zeroed). fan_in= / fan_out= / fan_convention= ('torch', 'in_out', 'patch') and
padding_idx= and fused= ({'dim': d, 'parts': k}) as in the manifest. Without either, the tensor is the whole global tensor. The stream is
stream_from_name(name) unless stream= is given. Values are the CLI's, bit for bit (docs/python.md).)doc");

  m.def("local_holding", &placed_holding, py::arg("global_shape"), py::kw_only(), py::arg("layout") = py::none(),
        py::arg("mesh") = py::none(), py::arg("rank") = py::none(), py::arg("parallel") = py::none(),
        py::arg("world") = py::none(), py::arg("stage") = py::none(), py::arg("layer") = py::none(),
        py::arg("data_partition") = py::none(), py::arg("expert") = py::none(), py::arg("name") = py::none(),
        py::arg("fused") = py::none(),
        "What rank= holds of a tensor under a placement (the keywords of fill_): a dict with holds, box=(start, "
        "extent), first and count (in the box's row-major order: the zero3 range, else the whole box), buffer "
        "(zero3: the partition size with padding) and zero3.");

  m.def(
      "local_box",
      [](py::object global_shape, py::object layout, py::object mesh, py::object rank, py::object parallel, py::object world,
         py::object stage, py::object layer, py::object data_partition, py::object expert) {
        const py::dict h = placed_holding(global_shape, layout, mesh, rank, parallel, world, stage, layer, data_partition, expert,
                                          py::none(), py::none());
        return py::object(h["box"]);
      },
      py::arg("global_shape"), py::arg("layout"), py::arg("mesh") = py::none(), py::arg("rank") = py::none(),
      py::kw_only(), py::arg("parallel") = py::none(), py::arg("world") = py::none(), py::arg("stage") = py::none(),
      py::arg("layer") = py::none(), py::arg("data_partition") = py::none(), py::arg("expert") = py::none(),
      "The box (start, extent) of the global tensor that `rank` holds under `layout` (docs/layouts.md); under "
      "zero3, the box its range lies in (see local_holding).");

  m.def(
      "colossal_mesh",
      [](py::object parallel) { return colossal_mesh(to_topology(parallel).tensor).shape(); }, py::arg("parallel"),
      "The process mesh of a Colossal-AI tensor-parallel configuration: {'mode': '2d', 'size': 4} -> [2, 2].");

  m.def(
      "job_mesh",
      [](py::object parallel, py::object world) { return topology_mesh(to_topology(parallel), world_of(world)).shape(); },
      py::arg("parallel"), py::arg("world"),
      "The mesh of a job's topology on `world` ranks: its axes [dp (or edp, ep), pp, tp...] in the topology's order.");

  m.def(
      "coordinates",
      [](py::object parallel, py::object world, py::object rank) {
        const RankOnJob job = rank_on_job(parallel, world, rank);
        return coordinates_dict(parallel_coordinates(job.topology, job.world, job.rank));
      },
      py::arg("parallel"), py::arg("world"), py::arg("rank"),
      "A rank's place in the job: {'dp', 'pp', 'tp', 'ep', 'edp'} (its ranks in those groups; dp = edp * expert + ep).");

  m.def(
      "groups",
      [](py::object parallel, py::object world, py::object rank) {
        const RankOnJob job = rank_on_job(parallel, world, rank);
        py::dict d;
        for (const ParallelAxis a : {ParallelAxis::data, ParallelAxis::pipeline, ParallelAxis::tensor, ParallelAxis::expert,
                                     ParallelAxis::expert_data}) {
          d[py::str(std::string(parallel_axis_name(a)))] = parallel_group(job.topology, job.world, job.rank, a);
        }
        return d;
      },
      py::arg("parallel"), py::arg("world"), py::arg("rank"),
      "The global ranks of each of the rank's groups, by local rank: {'dp': [...], 'pp': [...], 'tp': [...], 'ep': "
      "[...], 'edp': [...]}; e.g. for MPI.COMM_WORLD.Create_group or torch.distributed.new_group.");

  m.def(
      "rank_of",
      [](py::object parallel, py::object world, int dp, int pp, int tp) {
        const Topology t = to_topology(parallel);
        const int w = world_of(world);
        const int data = topology_data_size(t, w);
        if (dp < 0 || dp >= data || pp < 0 || pp >= t.pipeline || tp < 0 || tp >= t.tensor.size) {
          throw py::value_error("coordinates dp=" + std::to_string(dp) + ", pp=" + std::to_string(pp) + ", tp=" + std::to_string(tp) +
                                " are outside the job (dp < " + std::to_string(data) + ", pp < " + std::to_string(t.pipeline) +
                                ", tp < " + std::to_string(t.tensor.size) + ")");
        }
        return rank_of(t, w, ParallelCoordinates{dp, pp, tp, 0, 0});
      },
      py::arg("parallel"), py::arg("world"), py::kw_only(), py::arg("dp") = 0, py::arg("pp") = 0, py::arg("tp") = 0,
      "The global rank at data-parallel rank dp, stage pp and tensor-parallel rank tp.");

  m.def(
      "holdings",
      [](py::object manifest, py::object world, py::object rank) {
        const std::string path = py::str(py::module_::import("os").attr("fsdecode")(manifest));
        const Manifest m = load_manifest(path);
        const int w = world_of(world);
        py::list out;
        for (const TensorHolding& h : manifest_holdings(m, w, rank_in(rank, w))) {
          py::dict d = holding_dict(h.holding, true);
          d["name"] = h.tensor->name;
          d["shape"] = py::tuple(py::cast(h.tensor->shape));
          d["dtype"] = std::string(dtype_name(h.tensor->dtype));
          out.append(d);
        }
        return out;
      },
      py::arg("manifest"), py::arg("world"), py::arg("rank"),
      "The tensors rank holds in a run of the manifest on world ranks (other stages' and other expert ranks' left out), in manifest order: "
      "dicts with name, shape, dtype and the keys of local_holding.");

  m.def(
      "resolve",
      [](py::object global_shape, const init::Initializer& initializer, py::object name, py::object layout, py::object mesh,
         py::object rank, py::object parallel, py::object world, py::object stage, py::object layer, py::object data_partition,
         py::object expert, py::object fan_in, py::object fan_out, py::object fan_convention, py::object padding_idx,
         py::object stream, py::object fused, py::object dtype) {
        FillRequest request = request_from(py::int_(0), global_shape, {name, layout, mesh, rank, parallel, world, stage, layer,
                                                                       data_partition, expert, fan_in, fan_out, fan_convention,
                                                                       padding_idx, stream, fused});
        const std::optional<DType> d = to_dtype(dtype);
        return resolved_dict(resolve_request(initializer, request, *request.global_shape, d.value_or(DType::f32)).tensor);
      },
      py::arg("global_shape"), py::arg("initializer"), py::arg("name") = py::none(), py::kw_only(), SHARDINIT_PLACEMENT_ARGS,
      py::arg("dtype") = py::none(),
      "The tensor's definition as fill_ resolves it: a dict (name, shape, dtype, stream, fan_in, fan_out, "
      "fan_convention, distribution, layout, layout_name, padding_idx), equal to resolve_manifest's for the same tensor.");

  m.def(
      "resolve_manifest",
      [](const std::string& text) {
        const Manifest m = parse_manifest(text, "<manifest>");
        py::list out;
        for (const ManifestTensor& t : m.tensors) out.append(resolved_dict(t));
        return out;
      },
      py::arg("text"), "Every tensor of a manifest (JSON text) as resolved: the dicts of resolve().");

  m.def(
      "stream_from_name", [](const std::string& name) { return stream_from_name(name); }, py::arg("name"),
      "A tensor's default stream: the 64-bit FNV-1a hash of its UTF-8 name.");

  m.attr("__version__") = std::string(kLibraryVersion);
  m.attr("STREAM_FORMAT_VERSION") = std::string(kStreamFormatVersion);
}
