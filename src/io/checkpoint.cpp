#include "shardinit/io/checkpoint.hpp"

#include "io/checkpoint_internal.hpp"
#include "io/staged_file.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shardinit/error.hpp"
#include "util/printable.hpp"
#include "shardinit/version.hpp"

namespace shardinit {

namespace {

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
  // By name, once: a file of 400,000 tensors is compared in linear time.
  std::unordered_map<std::string_view, const SafetensorsTensor*> in_file, in_manifest;
  for (const auto& a : actual.tensors()) in_file.emplace(a.name, &a);
  for (const auto& e : expected.tensors()) in_manifest.emplace(e.name, &e);
  const auto find = [&in_file](const std::string& name) -> const SafetensorsTensor* {
    const auto it = in_file.find(name);
    return it == in_file.end() ? nullptr : it->second;
  };
  for (const auto& e : expected.tensors()) {
    const SafetensorsTensor* a = find(e.name);
    tensor = e.name;
    if (a == nullptr) return "tensor '" + detail::printable(e.name) + "' is missing from the file";
    if (a->dtype != e.dtype) {
      return "tensor '" + detail::printable(e.name) + "' has dtype " + std::string(dtype_safetensors_name(a->dtype)) + ", expected " +
             std::string(dtype_safetensors_name(e.dtype));
    }
    if (a->shape != e.shape) {
      return "tensor '" + detail::printable(e.name) + "' has shape " + shape_to_string(a->shape) + ", expected " + shape_to_string(e.shape);
    }
  }
  for (const auto& a : actual.tensors()) {
    tensor = a.name;
    if (!in_manifest.contains(a.name)) {
      return "the file has a tensor '" + detail::printable(a.name) + "' that the manifest does not";
    }
  }
  tensor.reset();
  for (const auto& [key, value] : expected_metadata) {
    const auto it = actual.metadata().find(key);
    if (it == actual.metadata().end()) return "metadata key " + detail::quote(key) + " is missing";
    if (it->second != value) {
      const bool short_value = value.size() < 80 && it->second.size() < 80;
      return "metadata " + detail::quote(key) + " differs" +
             (short_value ? ": expected " + detail::quote(value) + ", found " + detail::quote(it->second) : std::string());
    }
  }
  for (const auto& [key, value] : actual.metadata()) {
    if (!expected_metadata.contains(key)) return "the file has unexpected metadata key " + detail::quote(key);
  }
  for (const auto& e : expected.tensors()) {
    const SafetensorsTensor* a = find(e.name);
    if (a->begin != e.begin) {
      tensor = e.name;
      return "tensor '" + detail::printable(e.name) + "' is stored at data offset " + std::to_string(a->begin) + ", expected " +
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

SafetensorsMetadata checkpoint_metadata(const Manifest& manifest) {
  return {{kMetaFormat, "pt"},
          {kMetaStreamFormat, std::string(kStreamFormatVersion)},
          {kMetaSeed, std::to_string(manifest.seed)},
          {kMetaDigest, manifest_digest(manifest)},
          {kMetaSpec, canonical_spec_json(manifest)}};
}

detail::OutputPolicy output_policy(const Manifest& manifest, bool overwrite) {
  detail::OutputPolicy policy{overwrite, {}};
  if (manifest.source) {
    policy.inputs.push_back({detail::FileIdentity{manifest.source->device, manifest.source->inode},
                             "the manifest " + detail::printable(manifest.source->path.string())});
  }
  return policy;
}

std::map<std::string, TensorFiller> fillers_by_name(const Manifest& manifest, FillOptions options) {
  std::map<std::string, TensorFiller> fillers;
  for (const auto& t : manifest.tensors) fillers.emplace(t.name, TensorFiller(manifest.seed, t.spec(), options));
  return fillers;
}

SafetensorsLayout checkpoint_layout(const Manifest& manifest) {
  std::vector<SafetensorsLayout::Entry> entries;
  for (const auto& t : manifest.tensors) entries.push_back({t.name, t.dtype, t.shape});
  return SafetensorsLayout(std::move(entries), checkpoint_metadata(manifest));
}

WriteStats write_checkpoint(const Manifest& manifest, const std::filesystem::path& path, bool overwrite,
                            const ProgressCallback& progress, FillOptions options) {
  const SafetensorsLayout layout = checkpoint_layout(manifest);
  const auto fillers = fillers_by_name(manifest, options);
  WriteStats stats;
  stats.tensors = static_cast<std::int64_t>(manifest.tensors.size());
  for (const auto& t : manifest.tensors) stats.elements += element_count(t.shape);
  stats.bytes = layout.file_size();
  std::int64_t done = 0;
  detail::stage_safetensors(
      path, layout,
      [&](const SafetensorsTensor& t, Index first, Index count, std::span<std::byte> out) {
        fillers.at(t.name).fill_flat(first, count, out);
        done += count;
        if (progress) progress(done, stats.elements);
      },
      output_policy(manifest, overwrite))
      .commit();
  return stats;
}

std::optional<VerifyResult> check_header(const SafetensorsLayout& expected, const SafetensorsMetadata& expected_metadata,
                                        const std::filesystem::path& path) {
  VerifyResult result;
  std::optional<SafetensorsReader> file;
  try {
    file.emplace(path);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::bad_file) throw;
    result.message = e.what();
    return result;
  }
  if (file->prefix() == expected.prefix()) return std::nullopt;
  result.message = header_difference(expected, *file, expected_metadata, result.tensor);
  return result;
}

std::string describe_difference(const std::string& tensor, const Shape& shape, Index flat,
                                std::span<const std::byte> expected, std::span<const std::byte> found) {
  return "tensor '" + detail::printable(tensor) + "' differs at flat index " + std::to_string(flat) + " (element " +
         shape_to_string(unflatten(shape, flat)) + "): expected bits " + hex_bytes(expected) + ", found " +
         hex_bytes(found);
}

VerifyResult verify_file(const SafetensorsLayout& expected, const SafetensorsMetadata& expected_metadata,
                         const TensorProducer& produce, const std::filesystem::path& path, const Heartbeat& heartbeat) {
  if (auto mismatch = check_header(expected, expected_metadata, path)) return *mismatch;
  // Same header, so the same offsets: compare the data tensor by tensor, in chunks.
  const SafetensorsReader file(path);
  VerifyResult result;
  constexpr std::size_t kChunkBytes = std::size_t{8} << 20;
  std::vector<std::byte> want(kChunkBytes), have(kChunkBytes);
  for (const SafetensorsTensor& t : expected.tensors()) {
    const std::size_t element_size = dtype_size(t.dtype);
    const Index total = static_cast<Index>((t.end - t.begin) / element_size);
    const Index chunk = static_cast<Index>(kChunkBytes / element_size);
    for (Index first = 0; first < total; first += chunk) {
      const Index count = std::min(chunk, total - first);
      const std::size_t bytes = static_cast<std::size_t>(count) * element_size;
      produce(t, first, count, std::span(want.data(), bytes));
      file.read(expected.data_start() + t.begin + static_cast<std::uint64_t>(first) * element_size,
                std::span(have.data(), bytes));
      if (std::memcmp(want.data(), have.data(), bytes) != 0) {
        Index i = 0;
        while (std::memcmp(want.data() + i * element_size, have.data() + i * element_size, element_size) == 0) ++i;
        result.tensor = t.name;
        result.index = first + i;
        result.message = describe_difference(t.name, t.shape, first + i, std::span(want.data() + i * element_size, element_size),
                                             std::span(have.data() + i * element_size, element_size));
        return result;
      }
      result.elements_checked += count;
      if (heartbeat) heartbeat();
    }
  }
  result.match = true;
  result.message = std::to_string(expected.tensors().size()) + " tensors, " + std::to_string(result.elements_checked) +
                   " elements and the header match";
  return result;
}

VerifyResult verify_checkpoint(const Manifest& manifest, const std::filesystem::path& path, FillOptions options) {
  const auto fillers = fillers_by_name(manifest, options);
  return verify_file(checkpoint_layout(manifest), checkpoint_metadata(manifest),
                     [&fillers](const SafetensorsTensor& t, Index first, Index count, std::span<std::byte> out) {
                       fillers.at(t.name).fill_flat(first, count, out);
                     },
                     path);
}

}  // namespace shardinit
