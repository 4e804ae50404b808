#pragma once
#include <string_view>

namespace shardinit {

// The version of the bit-level contract documented in docs/stream-format.md. It changes whenever any
// value that shardinit produces for a given (seed, stream, index, distribution, dtype) would change,
// and it is recorded in every file shardinit writes.
inline constexpr std::string_view kStreamFormatVersion = "shardinit-stream-v1";

// The library's own version (CMake project version).
inline constexpr std::string_view kLibraryVersion = "0.1.0";

}  // namespace shardinit
