#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/atomic_file.hpp"
#include "shardinit/error.hpp"
#include "shardinit/format/safetensors.hpp"
#include "util/checked.hpp"
#include "util/printable.hpp"

namespace shardinit {

SafetensorsLayout::SafetensorsLayout(std::vector<Entry> entries, SafetensorsMetadata metadata) {
  // Larger elements first, then by name: aligned, and independent of the order given.
  std::sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) {
    const std::size_t sx = dtype_size(x.dtype), sy = dtype_size(y.dtype);
    return sx != sy ? sx > sy : x.name < y.name;
  });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::int64_t offset = 0;
  for (auto& e : entries) {
    if (e.name == "__metadata__") throw Error(ErrorKind::invalid_argument, "a tensor cannot be named \"__metadata__\"");
    const std::string what = "tensor " + detail::quote(e.name) + " of shape " + shape_to_string(e.shape);
    const std::int64_t bytes = detail::byte_size(element_count(e.shape), dtype_size(e.dtype), what);
    const auto end = detail::checked_add(offset, bytes);
    if (!end) {
      throw Error(ErrorKind::invalid_argument, "the tensors add up to more than 2^63 - 1 bytes at " + what +
                                                   ": no file can hold them");
    }
    header[e.name] = {{"dtype", std::string(dtype_safetensors_name(e.dtype))},
                      {"shape", e.shape},
                      {"data_offsets", {offset, *end}}};
    tensors_.push_back(SafetensorsTensor{std::move(e.name), e.dtype, std::move(e.shape), static_cast<std::uint64_t>(offset),
                                         static_cast<std::uint64_t>(*end)});
    offset = *end;
  }
  data_size_ = static_cast<std::uint64_t>(offset);
  std::string json_text = header.dump();
  json_text.append((8 - json_text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  // The reference reader (safetensors' MAX_HEADER_SIZE) refuses a longer header: never write one.
  if (json_text.size() > kMaxSafetensorsHeader) {
    throw Error(ErrorKind::invalid_argument,
                "the safetensors header of these " + std::to_string(tensors_.size()) + " tensors would be " +
                    std::to_string(json_text.size()) + " bytes, more than the " + std::to_string(kMaxSafetensorsHeader) +
                    " bytes the safetensors library reads: split the tensors over several manifests");
  }
  if (!detail::checked_add(static_cast<std::int64_t>(json_text.size()) + 8, offset)) {
    throw Error(ErrorKind::invalid_argument, "the file would be more than 2^63 - 1 bytes");
  }
  const std::uint64_t n = json_text.size();
  prefix_.resize(8);
  for (int i = 0; i < 8; ++i) prefix_[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  prefix_ += json_text;
}

void write_safetensors(const std::filesystem::path& path, const SafetensorsLayout& layout,
                       const TensorProducer& produce, IfExists if_exists) {
  detail::AtomicFile file(path, detail::OutputPolicy{if_exists == IfExists::replace, {}}, layout.file_size());
  file.write(std::as_bytes(std::span(layout.prefix())));
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
      file.write(out);
    }
  }
  file.commit();
}

}  // namespace shardinit
