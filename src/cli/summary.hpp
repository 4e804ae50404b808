#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace shardinit::cli {

// "4 tensors, 41.2 M elements, 125.6 MiB in 0.84 s (49.0 M elements/s, 0.16 GB/s)"; bytes == 0
// leaves them out.
inline std::string summary_line(std::int64_t tensors, std::int64_t elements, std::uint64_t bytes, double seconds) {
  char text[256];
  const double rate = seconds > 0 ? static_cast<double>(elements) / seconds : 0.0;
  char bytes_text[64] = "";
  char speed_text[64] = "";
  if (bytes > 0) {
    std::snprintf(bytes_text, sizeof bytes_text, ", %.1f MiB", static_cast<double>(bytes) / (1 << 20));
    std::snprintf(speed_text, sizeof speed_text, ", %.2f GB/s", seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0.0);
  }
  std::snprintf(text, sizeof text, "%lld tensors, %lld elements%s in %.3f s (%.1f M elements/s%s)",
                static_cast<long long>(tensors), static_cast<long long>(elements), bytes_text, seconds, rate / 1e6, speed_text);
  return text;
}

}  // namespace shardinit::cli
