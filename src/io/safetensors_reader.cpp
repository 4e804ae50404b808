#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "shardinit/error.hpp"
#include "shardinit/io/safetensors.hpp"

namespace shardinit {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::filesystem::path& path, const std::string& why) {
  throw Error(ErrorKind::bad_file, path.string() + ": not a valid safetensors file: " + why);
}

void read_exactly(int fd, std::uint64_t offset, std::span<std::byte> out, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorKind::io, "cannot read " + path.string() + ": " + std::strerror(errno));
    }
    if (n == 0) bad(path, "file ends at byte " + std::to_string(offset + done) + ", before the data it declares");
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(ErrorKind::io, "cannot open " + path.string() + ": " + std::strerror(errno));
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw Error(ErrorKind::io, "cannot stat " + path.string() + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) bad(path, "not a regular file");
    file_size_ = static_cast<std::uint64_t>(st.st_size);
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

    // nlohmann stops at a NUL byte as if the input ended there; what follows must not be ignored.
    if (const auto nul = prefix_.find('\0', 8); nul != std::string::npos) {
      bad(path, "header is not JSON: it contains a NUL byte at offset " + std::to_string(nul));
    }
    json header;
    try {
      header = json::parse(prefix_.begin() + 8, prefix_.end());
    } catch (const json::exception& e) {
      std::string message = e.what();
      if (const auto at = message.find("] "); at != std::string::npos) message = message.substr(at + 2);
      bad(path, "header is not JSON (" + message + ")");
    }
    if (!header.is_object()) bad(path, "header is not a JSON object");
    const std::uint64_t data_size = file_size_ - data_start();
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) bad(path, "__metadata__ is not an object");
        for (const auto& [key, value] : entry.items()) {
          if (!value.is_string()) bad(path, "__metadata__ value of \"" + key + "\" is not a string");
          metadata_[key] = value.get<std::string>();
        }
        continue;
      }
      const std::string where = "tensor \"" + name + "\"";
      if (!entry.is_object()) bad(path, where + " is not an object");
      const auto dtype = entry.find("dtype");
      const auto shape = entry.find("shape");
      const auto offsets = entry.find("data_offsets");
      if (dtype == entry.end() || shape == entry.end() || offsets == entry.end() || entry.size() != 3) {
        bad(path, where + " must have exactly dtype, shape and data_offsets");
      }
      SafetensorsTensor t;
      t.name = name;
      if (!dtype->is_string() || !parse_safetensors_dtype(dtype->get<std::string>(), t.dtype)) {
        bad(path, where + " has dtype " + dtype->dump() + " (shardinit reads F32, F64, BF16, F16)");
      }
      if (!shape->is_array()) bad(path, where + " has a shape that is not an array");
      for (const auto& d : *shape) {
        if (!d.is_number_unsigned() || d.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<Index>::max())) {
          bad(path, where + " has an invalid dimension " + d.dump());
        }
        t.shape.push_back(static_cast<Index>(d.get<std::uint64_t>()));
      }
      if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
          !(*offsets)[1].is_number_unsigned()) {
        bad(path, where + " has data_offsets that are not two non-negative integers");
      }
      t.begin = (*offsets)[0].get<std::uint64_t>();
      t.end = (*offsets)[1].get<std::uint64_t>();
      if (t.begin > t.end || t.end > data_size) {
        bad(path, where + " has data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                      "] outside the " + std::to_string(data_size) + " bytes of data");
      }
      Index count = 0;
      try {
        count = element_count(t.shape);
      } catch (const Error&) {
        bad(path, where + " has a shape with too many elements");
      }
      if (static_cast<std::uint64_t>(count) > (t.end - t.begin) / dtype_size(t.dtype) ||
          static_cast<std::uint64_t>(count) * dtype_size(t.dtype) != t.end - t.begin) {
        bad(path, where + " declares " + std::to_string(t.end - t.begin) + " bytes for " + std::to_string(count) +
                      " elements of " + std::string(dtype_safetensors_name(t.dtype)));
      }
      tensors_.push_back(std::move(t));
    }
    // The tensors must tile the data exactly: no overlap, no hole, nothing after the last one.
    std::sort(tensors_.begin(), tensors_.end(), [](const auto& x, const auto& y) {
      return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
    });
    std::uint64_t expected = 0;
    for (const auto& t : tensors_) {
      if (t.begin != expected) {
        bad(path, "tensor \"" + t.name + "\" starts at data offset " + std::to_string(t.begin) + ", expected " +
                      std::to_string(expected) + (t.begin < expected ? " (it overlaps the one before)" : " (a hole)"));
      }
      expected = t.end;
    }
    if (expected != data_size) {
      bad(path, "tensors cover " + std::to_string(expected) + " bytes of data but the file holds " + std::to_string(data_size));
    }
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
