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

void fill_tensor(py::handle tensor, const init::Initializer& initializer, const FillRequest& request) {
  if (request.name.empty() && !request.stream) {
    throw py::value_error("a tensor name is required: name='fc1.weight' (its stream is stream_from_name(name)), or "
                          "stream=<integer>");
  }
  const std::uint64_t stream = request.stream ? *request.stream : stream_from_name(request.name);
  const std::string label =
      request.name.empty() ? "tensor with stream " + std::to_string(stream) : "tensor '" + request.name + "'";

  const WritableTensor target = WritableTensor::acquire(tensor);
  const DType dtype = target.fill_dtype(request.dtype);

  if (request.box && !request.global_shape) {
    throw py::value_error(label + ": box= needs global_shape= (the shape of the whole tensor the box is part of)");
  }
  const Shape global_shape = request.global_shape ? *request.global_shape : target.shape();
  const Box box = request.box ? *request.box : Box::whole(global_shape);
  try {
    check_box_inside(global_shape, box);
  } catch (const Error& e) {
    throw py::value_error(label + ": box (start " + tuple_string(box.start) + ", extent " + tuple_string(box.extent) +
                          ") does not fit global_shape " + tuple_string(global_shape) + ": " + e.what());
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
