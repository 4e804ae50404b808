#pragma once
// A Python tensor's own memory, to be written in place (never a copy): NumPy arrays and PyTorch CPU
// tensors through DLPack (`__dlpack__`), anything else with the buffer protocol (and NumPy arrays
// that DLPack refuses, such as read-only ones, so that the message can say why).

#include <Python.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include <pybind11/pybind11.h>

#include "shardinit/dtype.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit::python {

namespace py = pybind11;

namespace dlpack {
struct DLManagedTensor;
}

// The element types a tensor may hold, as far as shardinit is concerned.
enum class ElementKind { float32, float64, float16, bfloat16, uint16 };

class WritableTensor {
 public:
  // Exports the memory of `tensor` for writing. Throws py::type_error for an object that is no
  // tensor or an element type shardinit cannot fill (naming it), and py::value_error for memory that
  // cannot be written in place: not on the CPU, read-only, not row-major contiguous, misaligned.
  // Needs the GIL.
  [[nodiscard]] static WritableTensor acquire(py::handle tensor);

  // Releases the export (DLPack deleter or PyBuffer_Release): must run with the GIL held.
  ~WritableTensor();
  WritableTensor(WritableTensor&& other) noexcept;
  WritableTensor& operator=(WritableTensor&&) = delete;
  WritableTensor(const WritableTensor&) = delete;
  WritableTensor& operator=(const WritableTensor&) = delete;

  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] const Shape& shape() const noexcept { return shape_; }
  [[nodiscard]] std::size_t byte_size() const noexcept { return byte_size_; }
  // The tensor's element type in its own library's spelling ("float32", "torch.bfloat16").
  [[nodiscard]] const std::string& dtype_name() const noexcept { return dtype_name_; }

  // The shardinit dtype to fill with: the tensor's own, or `requested` (dtype=...) when given, which
  // must agree with it; a uint16 tensor holds 16-bit patterns and needs dtype='bf16' (or 'f16').
  // Throws py::type_error otherwise.
  [[nodiscard]] DType fill_dtype(std::optional<DType> requested) const;

 private:
  WritableTensor() = default;
  static std::optional<WritableTensor> from_dlpack(py::handle source, py::handle original, std::string& refusal);
  static WritableTensor from_buffer(py::handle tensor);

  std::byte* data_ = nullptr;
  Shape shape_;
  std::size_t byte_size_ = 0;
  ElementKind kind_ = ElementKind::float32;
  std::string dtype_name_;
  dlpack::DLManagedTensor* managed_ = nullptr;  // owned: its deleter runs in the destructor
  std::unique_ptr<Py_buffer> buffer_;           // owned: released in the destructor
};

}  // namespace shardinit::python
