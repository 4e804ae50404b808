#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace shardinit {

// Element types of the tensors shardinit writes. f32, bf16 and f16 share one generation path (values
// are made in binary32, then rounded to nearest-even for the 16-bit types); f64 has its own.
enum class DType { f32, f64, bf16, f16 };

[[nodiscard]] std::size_t dtype_size(DType dtype) noexcept;
// Manifest spelling: "f32", "f64", "bf16", "f16".
[[nodiscard]] std::string_view dtype_name(DType dtype) noexcept;
// safetensors spelling: "F32", "F64", "BF16", "F16".
[[nodiscard]] std::string_view dtype_safetensors_name(DType dtype) noexcept;
// Parses the manifest spelling; throws Error(invalid_argument) naming the bad value otherwise.
[[nodiscard]] DType parse_dtype(std::string_view text);
// Parses the safetensors spelling; returns false for any other (including dtypes shardinit never writes).
[[nodiscard]] bool parse_safetensors_dtype(std::string_view text, DType& out) noexcept;
// Largest finite value of the type, as a double.
[[nodiscard]] double dtype_max_finite(DType dtype) noexcept;

}  // namespace shardinit
