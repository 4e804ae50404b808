#include "fill.hpp"

#include <span>

#include "shardinit/engine/stream.hpp"
#include "shardinit/error.hpp"
#include "shardinit/fill/fill.hpp"
#include "tensor_access.hpp"
#include "text.hpp"

namespace shardinit::python {

Distribution resolve_distribution(const init::Initializer& initializer, const FillRequest& request,
                                  const Shape& global_shape, DType dtype, const std::string& label) {
  // The same steps as the manifest's parse_tensor (src/manifest/manifest.cpp), so that a tensor
  // filled here equals the CLI's for the same definition.
  try {
    const bool empty = element_count(global_shape) == 0;
    if (empty) {
      validate(initializer(init::Fans{1, 1}), dtype);
      return Constant{0.0};
    }
    init::Fans resolved = init::resolve_fans(request.explicit_fans, global_shape);
    if (request.fans_in_out && global_shape.size() >= 2) {
      if (!request.explicit_fans.fan_in) resolved.fan_in = global_shape[0];
      if (!request.explicit_fans.fan_out) resolved.fan_out = global_shape[1];
    }
    init::Fans read;
    if (initializer.uses_fan_in()) read.fan_in = resolved.fan_in;
    if (initializer.uses_fan_out()) read.fan_out = resolved.fan_out;
    Distribution distribution = initializer(read);
    validate(distribution, dtype);
    return distribution;
  } catch (const Error& e) {
    const std::string_view kind = init::kind_name(initializer.kind());
    const std::string_view message = e.what();
    throw Error(e.kind(), label + ": " + (message.starts_with(kind) ? "" : std::string(kind) + ": ") + std::string(message));
  }
}

namespace {

// Runs `acquire` and prefixes the message of the py::type_error / py::value_error it throws with `label`.
template <class Function>
auto with_label(const std::string& label, Function&& acquire) {
  try {
    return acquire();
  } catch (const py::type_error& e) {
    throw py::type_error(label + ": " + e.what());
  } catch (const py::value_error& e) {
    throw py::value_error(label + ": " + e.what());
  }
}

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

void fill_tensor(py::handle tensor, const init::Initializer& initializer, const FillRequest& request) {
  if (request.name.empty() && !request.stream) {
    throw py::value_error("a tensor name is required: name='fc1.weight' (its stream is stream_from_name(name)), or "
                          "stream=<integer>");
  }
  const std::uint64_t stream = request.stream ? *request.stream : stream_from_name(request.name);
  const std::string label =
      request.name.empty() ? "tensor with stream " + std::to_string(stream) : "tensor '" + request.name + "'";

  // The tensor's own problems (dtype, contiguity, device, read-only), prefixed with its name.
  const WritableTensor target = with_label(label, [&] { return WritableTensor::acquire(tensor); });
  const DType dtype = with_label(label, [&] { return target.fill_dtype(request.dtype); });

  if (request.box && !request.global_shape) {
    throw py::value_error(label + ": box= needs global_shape= (the shape of the whole tensor the box is part of)");
  }
  const Shape global_shape = request.global_shape ? *request.global_shape : target.shape();
  const Box box = request.box ? *request.box : Box::whole(global_shape);
  if (const std::string problem = box_problem(global_shape, box); !problem.empty()) {
    throw py::value_error(label + ": box=(" + tuple_string(box.start) + ", " + tuple_string(box.extent) +
                          ") is not inside global_shape " + tuple_string(global_shape) + ": " + problem);
  }
  if (target.shape() != box.extent) {
    throw py::value_error(
        label + ": the tensor's shape " + tuple_string(target.shape()) +
        (request.box ? " does not equal the box extent " + tuple_string(box.extent) +
                           " (the tensor must be exactly the box it holds)"
                     : " does not equal global_shape " + tuple_string(global_shape) +
                           " (to fill a piece of the tensor, pass box=(start, extent) or a layout)"));
  }

  const Distribution distribution = resolve_distribution(initializer, request, global_shape, dtype, label);
  if (box.element_count() == 0) return;
  const TensorSpec spec{request.name.empty() ? "stream " + std::to_string(stream) : request.name, global_shape, dtype,
                        stream, distribution};
  const TensorFiller filler(request.seed, spec, FillOptions{.threads = request.threads});
  const std::span<std::byte> out(target.data(), target.byte_size());
  // Pure computation on memory the export keeps alive: other Python threads may run meanwhile. The
  // export itself is released (by `target`'s destructor) after the GIL is taken back.
  py::gil_scoped_release release;
  filler.fill_box(box, out);
}

}  // namespace shardinit::python
