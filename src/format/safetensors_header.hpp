#pragma once
// The JSON header of a safetensors file, checked as untrusted input: what SafetensorsReader parses
// after reading the header's bytes, separate from the file so that it can be fuzzed and tested on
// bytes alone.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shardinit/format/safetensors.hpp"

namespace shardinit::detail {

struct SafetensorsHeader {
  std::vector<SafetensorsTensor> tensors;  // in data order
  SafetensorsMetadata metadata;
};

// Parses `header` (the JSON text between the length and the data) of a file from `source` whose data
// section holds `data_size` bytes. Throws Error(bad_file) "SOURCE: not a valid safetensors file: WHY"
// unless it is a JSON object (no NUL, no repeated key) of tensor entries with exactly dtype, shape
// and data_offsets, of a dtype shardinit reads, whose offsets tile the data exactly, plus an
// optional __metadata__ object of strings. Never allocates more than a small multiple of the
// header's own size.
[[nodiscard]] SafetensorsHeader parse_safetensors_header(std::string_view header, std::uint64_t data_size,
                                                         const std::string& source);

}  // namespace shardinit::detail
