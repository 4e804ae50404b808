#pragma once
// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON header (padded with spaces to a multiple of 8), then the tensor data,
// contiguous and without holes. shardinit lays tensors out by decreasing element size, then by name
// (as the safetensors library does), so every tensor is aligned and the bytes do not depend on the
// order of the manifest.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "shardinit/dtype.hpp"
#include "shardinit/tensor/shape.hpp"

namespace shardinit {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  std::uint64_t begin = 0;  // data_offsets, relative to the start of the data
  std::uint64_t end = 0;
};

using SafetensorsMetadata = std::map<std::string, std::string>;

// Where everything goes in a file, before a byte is written.
class SafetensorsLayout {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
  };
  SafetensorsLayout(std::vector<Entry> entries, SafetensorsMetadata metadata);

  // Length prefix, JSON header and padding: the first data_start() bytes of the file.
  [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }
  [[nodiscard]] std::uint64_t data_start() const noexcept { return prefix_.size(); }
  [[nodiscard]] std::uint64_t file_size() const noexcept { return prefix_.size() + data_size_; }
  // In data order.
  [[nodiscard]] const std::vector<SafetensorsTensor>& tensors() const noexcept { return tensors_; }

 private:
  std::vector<SafetensorsTensor> tensors_;
  std::string prefix_;
  std::uint64_t data_size_ = 0;
};

// Produces elements [first, first + count) of a tensor into `out`.
using TensorProducer =
    std::function<void(const SafetensorsTensor& tensor, Index first, Index count, std::span<std::byte> out)>;

// What a write does when its output exists already.
enum class IfExists {
  refuse,   // throw Error(io), leaving it as it was
  replace,  // replace it (a regular file only, once the new one is complete)
};

// Writes a whole file: to a temporary file beside `path`, renamed over `path` only once everything
// is written and flushed, so a failed or interrupted run leaves nothing at `path`. Throws Error(io)
// naming the path and the system's reason.
void write_safetensors(const std::filesystem::path& path, const SafetensorsLayout& layout,
                       const TensorProducer& produce, IfExists if_exists = IfExists::refuse);

// A safetensors file opened for reading. The header is checked completely before anything is
// trusted: size limits, JSON, dtypes, shapes, and offsets that tile the data exactly.
class SafetensorsReader {
 public:
  // Throws Error(io) if the file cannot be read, Error(bad_file) if it is not valid safetensors.
  explicit SafetensorsReader(const std::filesystem::path& path);
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }
  [[nodiscard]] std::uint64_t data_start() const noexcept { return prefix_.size(); }
  [[nodiscard]] std::uint64_t file_size() const noexcept { return file_size_; }
  [[nodiscard]] const std::vector<SafetensorsTensor>& tensors() const noexcept { return tensors_; }  // data order
  [[nodiscard]] const SafetensorsMetadata& metadata() const noexcept { return metadata_; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] const SafetensorsTensor* find(std::string_view name) const noexcept;

  // Reads out.size() bytes at `offset` from the start of the file.
  void read(std::uint64_t offset, std::span<std::byte> out) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t file_size_ = 0;
  std::string prefix_;
  std::vector<SafetensorsTensor> tensors_;
  SafetensorsMetadata metadata_;
};

// The largest JSON header shardinit reads (the safetensors library's own limit).
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

}  // namespace shardinit
