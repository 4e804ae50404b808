#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "format/regular_file.hpp"
#include "format/safetensors_header.hpp"
#include "shardinit/error.hpp"
#include "shardinit/format/safetensors.hpp"
#include "util/printable.hpp"

namespace shardinit {

namespace {

[[noreturn]] void bad(const std::filesystem::path& path, const std::string& why) {
  throw Error(ErrorKind::bad_file, detail::printable(path.string()) + ": not a valid safetensors file: " + why);
}

void read_exactly(int fd, std::uint64_t offset, std::span<std::byte> out, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorKind::io, "cannot read " + detail::printable(path.string()) + ": " + std::strerror(errno));
    }
    if (n == 0) bad(path, "file ends at byte " + std::to_string(offset + done) + ", before the data it declares");
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path) : path_(path) {
  // Never blocks on a FIFO or a device: such a path is refused as not a safetensors file.
  try {
    detail::RegularFile file(path, "safetensors file", ErrorKind::bad_file);
    file_size_ = file.size();
    fd_ = file.release();
  } catch (const detail::NotARegularFile& e) {
    bad(path, "it is " + std::string(e.type()) + ", not a regular file");
  }
  try {
    if (file_size_ < 8) bad(path, "it has " + std::to_string(file_size_) + " bytes, fewer than the 8-byte header length");

    std::array<std::byte, 8> length_bytes{};
    read_exactly(fd_, 0, length_bytes, path);
    std::uint64_t header_length = 0;
    for (int i = 0; i < 8; ++i) header_length |= std::uint64_t(std::to_integer<std::uint8_t>(length_bytes[i])) << (8 * i);
    if (header_length > kMaxSafetensorsHeader) {
      bad(path, "header length " + std::to_string(header_length) + " exceeds the limit of " + std::to_string(kMaxSafetensorsHeader));
    }
    if (header_length > file_size_ - 8) {
      bad(path, "header length " + std::to_string(header_length) + " runs past the end of the " +
                    std::to_string(file_size_) + "-byte file");
    }
    prefix_.resize(8 + header_length);
    read_exactly(fd_, 0, std::as_writable_bytes(std::span(prefix_)), path);

    detail::SafetensorsHeader header = detail::parse_safetensors_header(
        std::string_view(prefix_).substr(8), file_size_ - data_start(), detail::printable(path.string()));
    tensors_ = std::move(header.tensors);
    metadata_ = std::move(header.metadata);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

SafetensorsReader::~SafetensorsReader() {
  if (fd_ >= 0) ::close(fd_);
}

const SafetensorsTensor* SafetensorsReader::find(std::string_view name) const noexcept {
  const auto it = std::find_if(tensors_.begin(), tensors_.end(), [name](const auto& t) { return t.name == name; });
  return it == tensors_.end() ? nullptr : &*it;
}

void SafetensorsReader::read(std::uint64_t offset, std::span<std::byte> out) const { read_exactly(fd_, offset, out, path_); }

}  // namespace shardinit
