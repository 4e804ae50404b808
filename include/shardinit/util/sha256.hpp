#pragma once
// SHA-256 (FIPS 180-4), for the manifest digest recorded in every output file.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardinit {

class Sha256 {
 public:
  Sha256() noexcept;
  void update(std::string_view bytes) noexcept;
  [[nodiscard]] std::array<std::uint8_t, 32> finish() noexcept;

  // Lower-case hex digest of `bytes`.
  [[nodiscard]] static std::string hex(std::string_view bytes);

 private:
  void compress(const std::uint8_t* block) noexcept;
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::uint64_t length_ = 0;  // bytes hashed so far
};

}  // namespace shardinit
