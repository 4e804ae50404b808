#include "tensor_access.hpp"

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "dlpack.hpp"
#include "shardinit/error.hpp"
#include "text.hpp"
#include "writable_memory.hpp"

namespace shardinit::python {
namespace {

// "numpy.ndarray", "torch.Tensor", "list".
std::string type_name(py::handle object) {
  const py::handle type = reinterpret_cast<PyObject*>(Py_TYPE(object.ptr()));
  const std::string module = py::str(py::getattr(type, "__module__", py::str("")));
  const std::string name = py::str(py::getattr(type, "__qualname__", py::str(Py_TYPE(object.ptr())->tp_name)));
  return module.empty() || module == "builtins" ? name : module + "." + name;
}

// The tensor's element type as its own library spells it (numpy "int32", torch "torch.int32"), else
// `fallback` (derived from DLPack or the buffer format).
std::string own_dtype_name(py::handle tensor, const std::string& fallback) {
  try {
    if (py::hasattr(tensor, "dtype")) return py::str(tensor.attr("dtype"));
  } catch (const py::error_already_set&) {
  }
  return fallback;
}

// DLPack's spelling of a type code and width: "float32", "bfloat16", "int32", "complex64x2".
std::string dlpack_dtype_name(const dlpack::DLDataType& type) {
  std::string base;
  switch (type.code) {
    case dlpack::kDLInt: base = "int"; break;
    case dlpack::kDLUInt: base = "uint"; break;
    case dlpack::kDLFloat: base = "float"; break;
    case dlpack::kDLBfloat: base = "bfloat"; break;
    case dlpack::kDLComplex: base = "complex"; break;
    case dlpack::kDLBool: base = "bool"; break;
    case dlpack::kDLOpaqueHandle: base = "opaque"; break;
    default: base = "type-code-" + std::to_string(type.code) + "-"; break;
  }
  std::string name = base + std::to_string(type.bits);
  if (type.lanes != 1) name += "x" + std::to_string(type.lanes);
  return name;
}

std::optional<ElementKind> dlpack_kind(const dlpack::DLDataType& type) {
  if (type.lanes != 1) return std::nullopt;
  if (type.code == dlpack::kDLFloat && type.bits == 32) return ElementKind::float32;
  if (type.code == dlpack::kDLFloat && type.bits == 64) return ElementKind::float64;
  if (type.code == dlpack::kDLFloat && type.bits == 16) return ElementKind::float16;
  if (type.code == dlpack::kDLBfloat && type.bits == 16) return ElementKind::bfloat16;
  if (type.code == dlpack::kDLUInt && type.bits == 16) return ElementKind::uint16;
  return std::nullopt;
}

std::size_t kind_size(ElementKind kind) {
  switch (kind) {
    case ElementKind::float32: return 4;
    case ElementKind::float64: return 8;
    default: return 2;
  }
}

[[noreturn]] void unsupported_dtype(const std::string& name) {
  throw py::type_error("unsupported dtype " + name +
                       ": shardinit fills float32, float64, float16 and bfloat16 tensors (torch.bfloat16, or a "
                       "NumPy uint16 array holding bf16 bit patterns with dtype='bf16')");
}

// The tensor must be on the CPU. Checked before exporting anything: a torch tensor names its device.
void check_device_attribute(py::handle tensor) {
  if (!py::hasattr(tensor, "device")) return;  // NumPy < 2 has no .device: always CPU
  const std::string device = py::str(tensor.attr("device"));
  if (device.rfind("cpu", 0) != 0 && device.rfind("CPU", 0) != 0) {
    throw py::value_error("the tensor is on device '" + device +
                          "': shardinit fills CPU memory only; fill a CPU tensor and move it (tensor.to(device))");
  }
}

// Row-major contiguity: every dimension longer than 1 has the stride of the dimensions after it (the
// stride of a dimension of length 1 does not matter, as NumPy and torch agree). Strides in bytes.
void check_row_major(const Shape& shape, const std::vector<Index>& byte_strides, std::size_t element_size) {
  Index expected = static_cast<Index>(element_size);
  bool contiguous = true;
  for (std::size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 0) return;  // no element: nothing to write, any strides will do
    if (shape[d] != 1 && byte_strides[d] != expected) contiguous = false;
    expected *= shape[d];
  }
  if (contiguous) return;
  bool in_elements = true;
  for (const Index s : byte_strides) in_elements = in_elements && s % static_cast<Index>(element_size) == 0;
  std::vector<Index> shown;
  for (const Index s : byte_strides) shown.push_back(in_elements ? s / static_cast<Index>(element_size) : s);
  throw py::value_error("the tensor is not contiguous (shape " + tuple_string(shape) + ", strides " +
                        tuple_string(shown) + (in_elements ? " in elements" : " in bytes") +
                        "): shardinit fills row-major contiguous memory in place, and a transposed view or a slice "
                        "with a step is not; fill a contiguous tensor (e.g. torch.empty(shape) or "
                        "numpy.empty(shape)) and copy it where it must go");
}

void check_aligned(const std::byte* data, std::size_t element_size) {
  if (reinterpret_cast<std::uintptr_t>(data) % element_size != 0) {
    throw py::value_error("the tensor's memory is not aligned to its " + std::to_string(element_size) +
                          "-byte elements: pass an aligned tensor (e.g. a copy)");
  }
}

// Where the tensor itself says its first element is: torch data_ptr(), NumPy __array_interface__.
std::optional<std::uintptr_t> own_address(py::handle tensor) {
  try {
    if (py::hasattr(tensor, "data_ptr")) return tensor.attr("data_ptr")().cast<std::uintptr_t>();
    if (py::hasattr(tensor, "__array_interface__")) {
      return tensor.attr("__array_interface__")["data"].cast<py::tuple>()[0].cast<std::uintptr_t>();
    }
  } catch (const py::error_already_set&) {
  } catch (const py::cast_error&) {
  }
  return std::nullopt;
}

// count * element_size, which an exporter's shape could make wrap.
std::size_t checked_byte_size(Index count, std::size_t element_size) {
  Index bytes = 0;
  if (__builtin_mul_overflow(count, static_cast<Index>(element_size), &bytes)) {
    throw py::value_error("the tensor's shape has more bytes than memory can hold");
  }
  return static_cast<std::size_t>(bytes);
}

}  // namespace

WritableTensor::WritableTensor(WritableTensor&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      shape_(std::move(other.shape_)),
      byte_size_(other.byte_size_),
      kind_(other.kind_),
      dtype_name_(std::move(other.dtype_name_)),
      managed_(std::exchange(other.managed_, nullptr)),
      buffer_(std::move(other.buffer_)) {}

WritableTensor::~WritableTensor() {
  if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
  if (buffer_) PyBuffer_Release(buffer_.get());
}

WritableTensor WritableTensor::acquire(py::handle tensor) {
  check_device_attribute(tensor);
  std::string refusal;
  if (py::hasattr(tensor, "__dlpack__")) {
    // torch refuses to export a tensor that requires grad (an nn.Parameter); its detached alias shares
    // the memory, and initializing a parameter in place is what torch.nn.init does under no_grad.
    py::object source = py::reinterpret_borrow<py::object>(tensor);
    if (py::hasattr(tensor, "requires_grad") && py::hasattr(tensor, "detach") &&
        PyObject_IsTrue(tensor.attr("requires_grad").ptr()) == 1) {
      source = tensor.attr("detach")();
    }
    if (auto exported = from_dlpack(source, tensor, refusal)) return std::move(*exported);
  }
  // DLPack refused (NumPy refuses read-only arrays, for one) or is absent: the buffer protocol says
  // why the memory cannot be written, or gives it.
  if (PyObject_CheckBuffer(tensor.ptr()) == 1) return from_buffer(tensor);
  if (!refusal.empty()) {
    throw py::value_error("cannot write this " + type_name(tensor) + " in place: its __dlpack__() export failed (" +
                          refusal + ")");
  }
  throw py::type_error("expected a NumPy array or a PyTorch CPU tensor (an object with __dlpack__ or the buffer "
                       "protocol), got " + type_name(tensor));
}

std::optional<WritableTensor> WritableTensor::from_dlpack(py::handle source, py::handle original, std::string& refusal) {
  py::object capsule;
  try {
    if (py::hasattr(source, "__dlpack_device__")) {
      const auto device = source.attr("__dlpack_device__")().cast<py::tuple>();
      const int type = device[0].cast<int>();
      if (type != dlpack::kDLCPU && type != dlpack::kDLCUDAHost) {
        throw py::value_error("the tensor is on DLPack device type " + std::to_string(type) +
                              " (1 is the CPU): shardinit fills CPU memory only");
      }
    }
    capsule = source.attr("__dlpack__")();
  } catch (py::error_already_set& e) {
    refusal = e.what();
    return std::nullopt;
  }
  PyObject* raw = capsule.ptr();
  if (PyCapsule_IsValid(raw, dlpack::kCapsuleName) != 1) {
    throw py::type_error(type_name(original) + ".__dlpack__() did not return an unused DLPack \"dltensor\" capsule");
  }
  auto* managed = static_cast<dlpack::DLManagedTensor*>(PyCapsule_GetPointer(raw, dlpack::kCapsuleName));
  if (managed == nullptr) throw py::error_already_set();
  // Ours from now on: the capsule's destructor leaves a "used_dltensor" alone, our destructor frees it.
  if (PyCapsule_SetName(raw, dlpack::kUsedCapsuleName) != 0) throw py::error_already_set();
  WritableTensor result;
  result.managed_ = managed;

  const dlpack::DLTensor& t = managed->dl_tensor;
  if (t.device.device_type != dlpack::kDLCPU && t.device.device_type != dlpack::kDLCUDAHost) {
    throw py::value_error("the tensor is on DLPack device type " + std::to_string(t.device.device_type) +
                          " (1 is the CPU): shardinit fills CPU memory only");
  }
  result.dtype_name_ = own_dtype_name(original, dlpack_dtype_name(t.dtype));
  const auto kind = dlpack_kind(t.dtype);
  if (!kind) unsupported_dtype(result.dtype_name_);
  result.kind_ = *kind;
  const std::size_t element_size = kind_size(*kind);
  if (t.ndim < 0 || (t.ndim > 0 && t.shape == nullptr)) throw py::value_error("the tensor's DLPack export has no shape");
  result.shape_.assign(t.shape, t.shape + t.ndim);
  std::vector<Index> byte_strides(result.shape_.size());
  for (std::size_t d = 0; d < result.shape_.size(); ++d) {
    byte_strides[d] = t.strides != nullptr ? t.strides[d] * static_cast<Index>(element_size) : 0;
  }
  const Index count = element_count(result.shape_);
  if (t.strides != nullptr) check_row_major(result.shape_, byte_strides, element_size);
  result.byte_size_ = checked_byte_size(count, element_size);
  result.data_ = static_cast<std::byte*>(t.data) + t.byte_offset;
  if (count > 0) {
    check_aligned(result.data_, element_size);
    // In place or not at all: a producer that exported a copy would make the fill invisible.
    const auto address = own_address(original);
    if (address && *address != reinterpret_cast<std::uintptr_t>(result.data_)) {
      throw std::runtime_error("the DLPack export of this " + type_name(original) +
                               " is not its own memory (a copy?): filling it would not change the tensor");
    }
    // DLPack has no read-only flag (torch exports a tensor over bytes as if it could be written).
    check_writable_memory(result.data_, result.byte_size_, type_name(original));
  }
  return result;
}

WritableTensor WritableTensor::from_buffer(py::handle tensor) {
  WritableTensor result;
  auto buffer = std::make_unique<Py_buffer>();
  // Strides and format, read-only allowed: a read-only array is reported below rather than by a
  // generic BufferError.
  if (PyObject_GetBuffer(tensor.ptr(), buffer.get(), PyBUF_RECORDS_RO) != 0) {
    py::error_already_set error;
    throw py::type_error("expected a NumPy array or a PyTorch CPU tensor, got " + type_name(tensor) +
                         " whose buffer cannot be read (" + error.what() + ")");
  }
  result.buffer_ = std::move(buffer);
  const Py_buffer& view = *result.buffer_;

  std::string_view format = view.format != nullptr ? view.format : "B";
  std::optional<ElementKind> kind;
  if (!format.empty() && (format[0] == '@' || format[0] == '=' || format[0] == '<')) format.remove_prefix(1);
  if (format == "f") kind = ElementKind::float32;
  if (format == "d") kind = ElementKind::float64;
  if (format == "e") kind = ElementKind::float16;
  if (format == "H") kind = ElementKind::uint16;
  result.dtype_name_ = own_dtype_name(tensor, "buffer format '" + std::string(view.format != nullptr ? view.format : "B") + "'");
  if (view.readonly != 0) {
    throw py::value_error("the " + type_name(tensor) + " is read-only (for NumPy, flags.writeable is False): shardinit "
                          "fills in place; pass a writable array (e.g. array.copy())");
  }
  if (!kind || static_cast<std::size_t>(view.itemsize) != kind_size(*kind)) unsupported_dtype(result.dtype_name_);
  result.kind_ = *kind;
  const std::size_t element_size = kind_size(*kind);
  if (view.suboffsets != nullptr) {
    throw py::value_error("the tensor's memory is not one block (the buffer has suboffsets): shardinit fills "
                          "row-major contiguous memory in place");
  }
  result.shape_.assign(view.shape, view.shape + view.ndim);
  std::vector<Index> byte_strides(view.strides, view.strides + view.ndim);
  const Index count = element_count(result.shape_);
  check_row_major(result.shape_, byte_strides, element_size);
  result.byte_size_ = checked_byte_size(count, element_size);
  result.data_ = static_cast<std::byte*>(view.buf);
  if (count > 0) {
    check_aligned(result.data_, element_size);
    check_writable_memory(result.data_, result.byte_size_, type_name(tensor));
  }
  return result;
}

DType WritableTensor::fill_dtype(std::optional<DType> requested) const {
  DType own = DType::f32;
  switch (kind_) {
    case ElementKind::float32: own = DType::f32; break;
    case ElementKind::float64: own = DType::f64; break;
    case ElementKind::float16: own = DType::f16; break;
    case ElementKind::bfloat16: own = DType::bf16; break;
    case ElementKind::uint16:
      // NumPy has no bfloat16: a uint16 array holds the bit patterns, and the caller says of what.
      if (!requested || (*requested != DType::bf16 && *requested != DType::f16)) {
        throw py::type_error("a " + dtype_name_ + " tensor holds raw 16-bit patterns: pass dtype='bf16' (NumPy has no "
                             "bfloat16) or dtype='f16' to say which" +
                             (requested ? ", not dtype='" + std::string(shardinit::dtype_name(*requested)) + "'" : std::string()));
      }
      return *requested;
  }
  if (requested && *requested != own) {
    throw py::type_error("dtype='" + std::string(shardinit::dtype_name(*requested)) + "' does not match the tensor's dtype " +
                         dtype_name_ + " (filled as '" + std::string(shardinit::dtype_name(own)) +
                         "'): leave dtype= out, or pass a tensor of that type");
  }
  return own;
}

}  // namespace shardinit::python
