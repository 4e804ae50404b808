#pragma once
// How (seed, stream, position) becomes Philox input: stream format v1, sections 1-3 of
// docs/stream-format.md. Every function here is pure integer arithmetic.

#include <cstdint>
#include <string_view>

#include "shardinit/engine/philox.hpp"

namespace shardinit {

// The 64-bit seed of a run is the Philox key: low 32 bits in key word 0, high 32 bits in word 1.
[[nodiscard]] constexpr Philox4x32::key_type key_from_seed(std::uint64_t seed) noexcept {
  return {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
}

// A tensor's default stream id: 64-bit FNV-1a of the UTF-8 bytes of its name. FNV-1a is chosen for
// being trivially reimplementable and stable forever; streams only need to be distinct (the manifest
// rejects duplicates), Philox supplies the randomness.
[[nodiscard]] constexpr std::uint64_t stream_from_name(std::string_view name) noexcept {
  std::uint64_t hash = 0xCBF29CE484222325ull;  // FNV-1a 64-bit offset basis
  for (const char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x00000100000001B3ull;  // FNV-1a 64-bit prime
  }
  return hash;
}

// The counter of block `block` of stream `stream`: (block lo, block hi, stream lo, stream hi).
// Built-in distributions use blocks below 2^62 (tensors hold fewer than 2^63 elements and every
// block serves at least two elements), so the upper half of the block space is free for derived keys.
[[nodiscard]] constexpr Philox4x32::ctr_type block_counter(std::uint64_t stream,
                                                           std::uint64_t block) noexcept {
  return {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
          static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)};
}

// The four words of one block.
[[nodiscard]] constexpr Philox4x32::ctr_type block_words(Philox4x32::key_type key,
                                                         std::uint64_t stream,
                                                         std::uint64_t block) noexcept {
  return Philox4x32{}(block_counter(stream, block), key);
}

}  // namespace shardinit
