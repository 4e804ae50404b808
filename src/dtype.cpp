#include "shardinit/dtype.hpp"

#include <string>

#include "shardinit/error.hpp"

namespace shardinit {

std::size_t dtype_size(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16:
    case DType::f16: return 2;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
  }
  return "?";
}

std::string_view dtype_safetensors_name(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
  }
  return "?";
}

DType parse_dtype(std::string_view text) {
  for (const DType d : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    if (text == dtype_name(d)) return d;
  }
  throw Error(ErrorKind::invalid_argument,
              "unknown dtype \"" + std::string(text) + "\" (expected one of f32, f64, bf16, f16)");
}

bool parse_safetensors_dtype(std::string_view text, DType& out) noexcept {
  for (const DType d : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    if (text == dtype_safetensors_name(d)) {
      out = d;
      return true;
    }
  }
  return false;
}

double dtype_max_finite(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32: return 3.4028234663852886e38;
    case DType::f64: return 1.7976931348623157e308;
    case DType::bf16: return 3.3895313892515355e38;  // 0x7F7F
    case DType::f16: return 65504.0;
  }
  return 0;
}

}  // namespace shardinit
