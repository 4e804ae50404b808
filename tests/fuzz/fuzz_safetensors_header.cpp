// libFuzzer target: the safetensors header parser (untrusted input). The first 8 bytes of an input
// give the size of the data section (little-endian, below 2^48); the rest is the header's JSON. It
// must either parse or throw shardinit::Error. Run by scripts/fuzz.sh; replayed in CTest.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format/safetensors_header.hpp"
#include "shardinit/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  std::uint64_t data_size = 0;
  for (int i = 0; i < 8; ++i) data_size |= std::uint64_t{data[i]} << (8 * i);
  data_size &= (std::uint64_t{1} << 48) - 1;
  try {
    (void)shardinit::detail::parse_safetensors_header(
        std::string_view(reinterpret_cast<const char*>(data) + 8, size - 8), data_size, "fuzz.safetensors");
  } catch (const shardinit::Error&) {
  }
  return 0;
}
