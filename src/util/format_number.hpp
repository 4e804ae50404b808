#pragma once
#include <charconv>
#include <string>

namespace shardinit::detail {

// Shortest decimal that reads back as the same double ("0.1", "2.23606797749979", "1e+39").
inline std::string format_double(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

}  // namespace shardinit::detail
