#include "fill.hpp"

#include <algorithm>
#include <cstring>
#include <span>

#include <pybind11/stl.h>

#include "shardinit/engine/stream.hpp"
#include "shardinit/error.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/layout/shard.hpp"
#include "tensor_access.hpp"
#include "text.hpp"

namespace shardinit::python {

namespace {

// Why `box` is not inside `shape` ("" when it is), in Python's terms.
std::string box_problem(const Shape& shape, const Box& box) {
  if (box.start.size() != shape.size()) {
    return "the box has " + std::to_string(box.start.size()) + " dimensions, the tensor " + std::to_string(shape.size());
  }
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (box.start[d] > shape[d] || box.extent[d] > shape[d] - box.start[d]) {
      return "in dimension " + std::to_string(d) + ", start " + std::to_string(box.start[d]) + " + extent " +
             std::to_string(box.extent[d]) + " > " + std::to_string(shape[d]);
    }
  }
  return {};
}

}  // namespace

std::string tensor_label(const FillRequest& request) {
  if (!request.name.empty()) return "tensor '" + request.name + "'";
  if (!request.arguments.stream.is_none()) return "tensor with stream " + python_repr(request.arguments.stream);
  return "tensor";
}

Resolved resolve_request(const init::Initializer& initializer, const FillRequest& request, const Shape& shape, DType dtype) {
  const std::string label = tensor_label(request);
  if (request.box && request.placement.given(request.arguments)) {
    throw py::value_error(label + ": pass either box=(start, extent) or a placement (layout=, mesh=, parallel=, world=, rank=, "
                          "stage=, layer=, data_partition=, expert=), not both");
  }
  Resolved resolved;
  if (request.placement.given(request.arguments)) {
    resolved.job = with_label(label, [&] { return to_job(request.placement.mesh, request.placement.parallel, request.placement.world); });
  }
  TensorDefinition definition;
  definition.name = request.name;
  definition.shape = shape;
  definition.dtype = dtype;
  definition.initializer = initializer;
  with_label(label, [&] {
    apply_definition_arguments(request.arguments, resolved.job ? resolved.job->axis_names : std::vector<std::string>{}, definition);
    return 0;
  });
  if (definition.name.empty() && !definition.stream) {
    throw py::value_error("a tensor name is required: name='fc1.weight' (its stream is stream_from_name(name)), or "
                          "stream=<integer>");
  }
  if (definition.name.empty()) definition.name = "stream " + std::to_string(*definition.stream);  // for messages
  try {
    resolved.tensor = resolve(definition, resolved.job ? resolved.job->job : JobContext{});
  } catch (const DefinitionError& e) {
    // The initializer's messages start with its name; the others say which keyword is wrong.
    const std::string field = e.field() == DefinitionField::init ? "" : std::string(definition_field_key(e.field())) + ": ";
    throw Error(e.kind(), label + ": " + field + e.what());
  }
  return resolved;
}

RankHolding request_holding(const Resolved& resolved, const FillRequest& request) {
  const ResolvedTensor& t = resolved.tensor;
  if (resolved.job) {
    const int rank = with_label(tensor_label(request), [&] { return to_rank(request.placement.rank, resolved.job->mesh); });
    check_layout(t.layout, t.shape.size(), resolved.job->mesh);
    return {local_holding(t.shape, t.layout, resolved.job->mesh, rank), holds(t.layout, resolved.job->mesh, rank)};
  }
  // Without a placement: the whole tensor, or box= of it. A box is always one of the layout's space
  // (Holding::space), which a fused dimension splits in two; box= names the tensor's own dimensions.
  if (request.box && t.layout.fused) {
    throw py::value_error(tensor_label(request) + ": box= names a box of the tensor's own dimensions, which fused= splits: "
                          "pass a placement (layout=, parallel= or mesh=, rank=) instead");
  }
  Holding h;
  h.space = layout_space(t.shape, t.layout);
  h.box = request.box ? *request.box : Box::whole(h.space);
  h.count = h.buffer = h.box.element_count();
  return {h, true};
}

py::dict resolved_dict(const ResolvedTensor& t) {
  py::dict d;
  d["name"] = t.name;
  d["shape"] = py::tuple(py::cast(t.shape));
  d["dtype"] = std::string(dtype_name(t.dtype));
  d["stream"] = t.stream;
  d["fan_in"] = t.fans.fan_in ? py::object(py::int_(*t.fans.fan_in)) : py::none();
  d["fan_out"] = t.fans.fan_out ? py::object(py::int_(*t.fans.fan_out)) : py::none();
  d["fan_convention"] = std::string(init::fan_convention_name(t.fan_convention));
  d["distribution"] = t.empty ? std::string("none (no elements)") : describe(t.distribution);
  d["layout"] = t.layout.to_string();
  d["layout_name"] = t.layout_name;
  d["padding_idx"] = t.padding_idx ? py::object(py::int_(*t.padding_idx)) : py::none();
  return d;
}

void fill_tensor(py::handle tensor, const init::Initializer& initializer, const FillRequest& request) {
  if (request.name.empty() && request.arguments.stream.is_none()) {
    throw py::value_error("a tensor name is required: name='fc1.weight' (its stream is stream_from_name(name)), or "
                          "stream=<integer>");
  }
  const std::string label = tensor_label(request);
  // The tensor's own problems (dtype, contiguity, device, read-only), prefixed with its name.
  const WritableTensor target = with_label(label, [&] { return WritableTensor::acquire(tensor); });
  const DType dtype = with_label(label, [&] { return target.fill_dtype(request.dtype); });

  if (request.box && !request.global_shape) {
    throw py::value_error(label + ": box= needs global_shape= (the shape of the whole tensor the box is part of)");
  }
  const Shape global_shape = request.global_shape ? *request.global_shape : target.shape();
  if (request.box) {
    if (const std::string problem = box_problem(global_shape, *request.box); !problem.empty()) {
      throw py::value_error(label + ": box=(" + tuple_string(request.box->start) + ", " + tuple_string(request.box->extent) +
                            ") is not inside global_shape " + tuple_string(global_shape) + ": " + problem);
    }
  }
  const Resolved resolved = resolve_request(initializer, request, global_shape, dtype);
  const RankHolding holding = request_holding(resolved, request);
  const std::string expected =
      request.box    ? " does not equal the box extent " + tuple_string(holding.holding.box.extent) + " (the tensor must be exactly the box it holds)"
      : resolved.job ? " is not this rank's box " + tuple_string(holding.holding.local_shape(resolved.tensor.layout)) + " of global_shape " + tuple_string(global_shape)
                     : " does not equal global_shape " + tuple_string(global_shape) +
                           " (to fill a piece of the tensor, pass box=(start, extent) or a layout)";
  fill_held(target, label, resolved.tensor, holding, FillSettings{request.seed, request.threads}, expected);
}

void fill_held(const WritableTensor& target, const std::string& label, const ResolvedTensor& tensor, const RankHolding& holding,
               const FillSettings& settings, const std::string& shape_mismatch) {
  const Holding& h = holding.holding;
  if (!holding.held) {
    if (element_count(target.shape()) != 0) {
      throw py::value_error(label + ": this rank holds none of it (" + tensor.layout.to_string() +
                            "), but the tensor has shape " + tuple_string(target.shape()) + " (pass an empty tensor, or skip it)");
    }
    return;
  }
  if (h.flat) {
    // A zero3 partition: a 1-d tensor of the held elements, or of the whole partition (padding after them).
    const Index n = target.shape().size() == 1 ? target.shape()[0] : -1;
    if (n != h.count && n != h.buffer) {
      throw py::value_error(label + ": this rank holds elements [" + std::to_string(h.first) + ", " + std::to_string(h.first + h.count) +
                            ") of its box " + h.box.to_string() + " (zero3), so the tensor must be 1-d of " + std::to_string(h.count) +
                            " elements (or " + std::to_string(h.buffer) + ", the partition with its padding), got shape " +
                            tuple_string(target.shape()));
    }
  } else if (target.shape() != h.local_shape(tensor.layout)) {
    throw py::value_error(label + ": the tensor's shape " + tuple_string(target.shape()) + shape_mismatch);
  }
  if (h.count == 0 && target.byte_size() == 0) return;
  const TensorFiller filler(settings.seed, tensor.spec(), FillOptions{.threads = settings.threads});
  const std::span<std::byte> out(target.data(), target.byte_size());
  // Pure computation on memory the export keeps alive: other Python threads may run meanwhile. The
  // export itself is released (by the caller's WritableTensor) after the GIL is taken back.
  py::gil_scoped_release release;
  fill_holding(filler, h, out);
}

}  // namespace shardinit::python
