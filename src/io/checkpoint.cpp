#include "shardinit/io/checkpoint.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/version.hpp"

namespace shardinit {

namespace {

SafetensorsMetadata checkpoint_metadata(const Manifest& manifest) {
  return {{kMetaFormat, "pt"},
          {kMetaStreamFormat, std::string(kStreamFormatVersion)},
          {kMetaSeed, std::to_string(manifest.seed)},
          {kMetaDigest, manifest_digest(manifest)},
          {kMetaSpec, canonical_spec_json(manifest)}};
}

std::map<std::string, TensorFiller> fillers_by_name(const Manifest& manifest) {
  std::map<std::string, TensorFiller> fillers;
  for (const auto& t : manifest.tensors) fillers.emplace(t.name, TensorFiller(manifest.seed, t.spec()));
  return fillers;
}

std::string hex_bytes(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text = "0x";
  for (std::size_t i = bytes.size(); i-- > 0;) {  // little-endian: most significant byte last
    const auto b = std::to_integer<unsigned>(bytes[i]);
    text += kDigits[b >> 4];
    text += kDigits[b & 15];
  }
  return text;
}

// Explains how two headers differ, in the terms a user cares about.
std::string header_difference(const SafetensorsLayout& expected, const SafetensorsReader& actual,
                              const SafetensorsMetadata& expected_metadata, std::optional<std::string>& tensor) {
  for (const auto& e : expected.tensors()) {
    const SafetensorsTensor* a = actual.find(e.name);
    tensor = e.name;
    if (a == nullptr) return "tensor '" + e.name + "' is missing from the file";
    if (a->dtype != e.dtype) {
      return "tensor '" + e.name + "' has dtype " + std::string(dtype_safetensors_name(a->dtype)) + ", expected " +
             std::string(dtype_safetensors_name(e.dtype));
    }
    if (a->shape != e.shape) {
      return "tensor '" + e.name + "' has shape " + shape_to_string(a->shape) + ", expected " + shape_to_string(e.shape);
    }
  }
  for (const auto& a : actual.tensors()) {
    tensor = a.name;
    if (std::none_of(expected.tensors().begin(), expected.tensors().end(), [&](const auto& e) { return e.name == a.name; })) {
      return "the file has a tensor '" + a.name + "' that the manifest does not";
    }
  }
  tensor.reset();
  for (const auto& [key, value] : expected_metadata) {
    const auto it = actual.metadata().find(key);
    if (it == actual.metadata().end()) return "metadata key \"" + key + "\" is missing";
    if (it->second != value) {
      const bool short_value = value.size() < 80 && it->second.size() < 80;
      return "metadata \"" + key + "\" differs" +
             (short_value ? ": expected \"" + value + "\", found \"" + it->second + "\"" : std::string());
    }
  }
  for (const auto& [key, value] : actual.metadata()) {
    if (!expected_metadata.contains(key)) return "the file has unexpected metadata key \"" + key + "\"";
  }
  for (const auto& e : expected.tensors()) {
    const SafetensorsTensor* a = actual.find(e.name);
    if (a->begin != e.begin) {
      tensor = e.name;
      return "tensor '" + e.name + "' is stored at data offset " + std::to_string(a->begin) + ", expected " +
             std::to_string(e.begin) + " (tensors are not in shardinit's order)";
    }
  }
  const auto& x = expected.prefix();
  const auto& y = actual.prefix();
  std::size_t at = 0;
  while (at < x.size() && at < y.size() && x[at] == y[at]) ++at;
  return "header bytes differ from byte " + std::to_string(at) + " (formatting)";
}

}  // namespace

SafetensorsLayout checkpoint_layout(const Manifest& manifest) {
  std::vector<SafetensorsLayout::Entry> entries;
  for (const auto& t : manifest.tensors) entries.push_back({t.name, t.dtype, t.shape});
  return SafetensorsLayout(std::move(entries), checkpoint_metadata(manifest));
}

WriteStats write_checkpoint(const Manifest& manifest, const std::filesystem::path& path, bool overwrite) {
  const SafetensorsLayout layout = checkpoint_layout(manifest);
  const auto fillers = fillers_by_name(manifest);
  write_safetensors(
      path, layout,
      [&fillers](const SafetensorsTensor& t, Index first, Index count, std::span<std::byte> out) {
        fillers.at(t.name).fill_flat(first, count, out);
      },
      overwrite);
  WriteStats stats;
  stats.tensors = static_cast<std::int64_t>(manifest.tensors.size());
  for (const auto& t : manifest.tensors) stats.elements += element_count(t.shape);
  stats.bytes = layout.file_size();
  return stats;
}

VerifyResult verify_checkpoint(const Manifest& manifest, const std::filesystem::path& path) {
  VerifyResult result;
  const SafetensorsLayout expected = checkpoint_layout(manifest);
  std::optional<SafetensorsReader> file;
  try {
    file.emplace(path);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::bad_file) throw;
    result.message = e.what();
    return result;
  }
  if (file->prefix() != expected.prefix()) {
    result.message = header_difference(expected, *file, checkpoint_metadata(manifest), result.tensor);
    return result;
  }
  // Same header, so the same offsets: compare the data tensor by tensor, in chunks.
  const auto fillers = fillers_by_name(manifest);
  constexpr std::size_t kChunkBytes = std::size_t{8} << 20;
  std::vector<std::byte> want(kChunkBytes), have(kChunkBytes);
  for (const SafetensorsTensor& t : expected.tensors()) {
    const std::size_t element_size = dtype_size(t.dtype);
    const Index total = static_cast<Index>((t.end - t.begin) / element_size);
    const Index chunk = static_cast<Index>(kChunkBytes / element_size);
    const TensorFiller& filler = fillers.at(t.name);
    for (Index first = 0; first < total; first += chunk) {
      const Index count = std::min(chunk, total - first);
      const std::size_t bytes = static_cast<std::size_t>(count) * element_size;
      filler.fill_flat(first, count, std::span(want.data(), bytes));
      file->read(expected.data_start() + t.begin + static_cast<std::uint64_t>(first) * element_size,
                 std::span(have.data(), bytes));
      if (std::memcmp(want.data(), have.data(), bytes) != 0) {
        Index i = 0;
        while (std::memcmp(want.data() + i * element_size, have.data() + i * element_size, element_size) == 0) ++i;
        const Index flat = first + i;
        result.tensor = t.name;
        result.index = flat;
        result.message = "tensor '" + t.name + "' differs at flat index " + std::to_string(flat) + " (element " +
                         shape_to_string(unflatten(t.shape, flat)) + "): expected bits " +
                         hex_bytes(std::span(want.data() + i * element_size, element_size)) + ", found " +
                         hex_bytes(std::span(have.data() + i * element_size, element_size));
        return result;
      }
      result.elements_checked += count;
    }
  }
  result.match = true;
  result.message = std::to_string(expected.tensors().size()) + " tensors, " + std::to_string(result.elements_checked) +
                   " elements and the header match";
  return result;
}

}  // namespace shardinit
