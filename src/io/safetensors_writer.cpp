#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/staged_file.hpp"
#include "shardinit/error.hpp"
#include "shardinit/io/safetensors.hpp"

namespace shardinit {

SafetensorsLayout::SafetensorsLayout(std::vector<Entry> entries, SafetensorsMetadata metadata) {
  // Larger elements first, then by name: aligned, and independent of the order given.
  std::sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) {
    const std::size_t sx = dtype_size(x.dtype), sy = dtype_size(y.dtype);
    return sx != sy ? sx > sy : x.name < y.name;
  });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (auto& e : entries) {
    if (e.name == "__metadata__") throw Error(ErrorKind::invalid_argument, "a tensor cannot be named \"__metadata__\"");
    const auto bytes = static_cast<std::uint64_t>(element_count(e.shape)) * dtype_size(e.dtype);
    header[e.name] = {{"dtype", std::string(dtype_safetensors_name(e.dtype))},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    tensors_.push_back(SafetensorsTensor{std::move(e.name), e.dtype, std::move(e.shape), offset, offset + bytes});
    offset += bytes;
  }
  data_size_ = offset;
  std::string json_text = header.dump();
  json_text.append((8 - json_text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  const std::uint64_t n = json_text.size();
  prefix_.resize(8);
  for (int i = 0; i < 8; ++i) prefix_[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  prefix_ += json_text;
}

namespace detail {

StagedFile stage_safetensors(const std::filesystem::path& path, const SafetensorsLayout& layout,
                             const TensorProducer& produce, bool overwrite) {
  auto file = std::make_unique<AtomicFile>(path, overwrite);
  file->write(std::as_bytes(std::span(layout.prefix())));
  constexpr std::size_t kChunkBytes = std::size_t{16} << 20;
  std::vector<std::byte> buffer(kChunkBytes);
  for (const SafetensorsTensor& t : layout.tensors()) {
    const std::size_t element_size = dtype_size(t.dtype);
    const Index total = static_cast<Index>((t.end - t.begin) / element_size);
    const Index chunk = static_cast<Index>(kChunkBytes / element_size);
    for (Index first = 0; first < total; first += chunk) {
      const Index count = std::min(chunk, total - first);
      const std::span<std::byte> out(buffer.data(), static_cast<std::size_t>(count) * element_size);
      produce(t, first, count, out);
      file->write(out);
    }
  }
  return file;
}

}  // namespace detail

void write_safetensors(const std::filesystem::path& path, const SafetensorsLayout& layout,
                       const TensorProducer& produce, bool overwrite) {
  detail::stage_safetensors(path, layout, produce, overwrite)->commit();
}

}  // namespace shardinit
