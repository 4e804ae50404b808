#include "checkpoint/file_bytes.hpp"

#include <algorithm>
#include <cstring>

#include "shardinit/error.hpp"
#include "shardinit/tensor/box_runs.hpp"
#include "util/printable.hpp"

namespace shardinit::detail {

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

// The first tensor (data order) ending after data offset `at`.
std::size_t tensor_at(const std::vector<SafetensorsTensor>& tensors, std::uint64_t at) {
  const auto it = std::upper_bound(tensors.begin(), tensors.end(), at,
                                   [](std::uint64_t value, const SafetensorsTensor& t) { return value < t.end; });
  return static_cast<std::size_t>(it - tensors.begin());
}

}  // namespace

ManifestFillers::ManifestFillers(const Manifest& manifest) : manifest_(&manifest) {
  fillers_.reserve(manifest.tensors.size());
  for (const ManifestTensor& t : manifest.tensors) fillers_.emplace_back(manifest.seed, t.spec(), FillOptions{1});
}

const TensorFiller& ManifestFillers::of(const ManifestTensor& tensor) const {
  return fillers_.at(static_cast<std::size_t>(&tensor - manifest_->tensors.data()));
}

void FileBytes::produce(std::uint64_t offset, std::span<std::byte> out) const {
  const SafetensorsLayout& layout = file_->layout;
  std::byte* at = out.data();
  std::uint64_t position = offset;
  const std::uint64_t end = offset + out.size();
  if (position < layout.data_start()) {
    const std::uint64_t n = std::min(end, layout.data_start()) - position;
    std::memcpy(at, layout.prefix().data() + position, n);
    at += n;
    position += n;
  }
  const auto& tensors = layout.tensors();
  for (std::size_t k = tensor_at(tensors, position - layout.data_start()); position < end && k < tensors.size(); ++k) {
    const SafetensorsTensor& t = tensors[k];
    const std::uint64_t data = position - layout.data_start();
    const std::uint64_t take = std::min(end - layout.data_start(), t.end) - data;
    if (take == 0) continue;
    const std::size_t element_size = dtype_size(t.dtype);
    if ((data - t.begin) % element_size != 0 || take % element_size != 0) {
      throw Error(ErrorKind::invalid_argument, "internal: bytes [" + std::to_string(offset) + ", " + std::to_string(end) +
                                                   ") do not start and end on element boundaries of tensor " + quote(t.name));
    }
    const StoredTensor& s = file_->stored[k];
    fillers_->of(*s.tensor).fill_box_range(s.space, s.box, s.first + static_cast<Index>((data - t.begin) / element_size),
                                           static_cast<Index>(take / element_size), std::span(at, take));
    at += take;
    position += take;
  }
}

std::optional<FileBytes::Location> FileBytes::locate(std::uint64_t offset) const {
  const SafetensorsLayout& layout = file_->layout;
  if (offset < layout.data_start()) return std::nullopt;
  const std::uint64_t data = offset - layout.data_start();
  const std::size_t k = tensor_at(layout.tensors(), data);
  if (k >= layout.tensors().size()) return std::nullopt;
  const SafetensorsTensor& t = layout.tensors()[k];
  return Location{k, static_cast<Index>((data - t.begin) / dtype_size(t.dtype))};
}

std::string describe_data_difference(const FileBytes& bytes, std::uint64_t begin, std::uint64_t offset,
                                     std::span<const std::byte> expected, std::span<const std::byte> found, bool local_shard) {
  const auto where = bytes.locate(offset);
  if (!where) return "byte " + std::to_string(offset) + " of the header differs";
  const PlannedFile& file = bytes.file();
  const SafetensorsTensor& t = file.layout.tensors()[where->stored];
  const StoredTensor& s = file.stored[where->stored];
  const std::size_t element_size = dtype_size(t.dtype);
  const std::uint64_t element_start = file.layout.data_start() + t.begin + static_cast<std::uint64_t>(where->element) * element_size;
  const std::size_t at = static_cast<std::size_t>(element_start - begin);  // the element lies inside the compared bytes
  const auto e = expected.subspan(at, element_size), f = found.subspan(at, element_size);
  const Index global_flat = box_element_flat(s.space, s.box, s.first + where->element);
  const std::string global_element = shape_to_string(unflatten(s.tensor->shape, global_flat));
  const std::string bits = "expected bits " + hex_bytes(e) + ", found " + hex_bytes(f);
  if (!local_shard) {
    return "tensor '" + printable(t.name) + "' differs at flat index " + std::to_string(global_flat) + " (element " + global_element +
           "): " + bits;
  }
  return "tensor '" + printable(t.name) + "' differs at flat index " + std::to_string(where->element) + " (element " +
         shape_to_string(unflatten(t.shape, where->element)) + "): " + bits + " [local shard of " +
         (s.flat ? "the zero3 range [" + std::to_string(s.first) + ", " + std::to_string(s.first + s.count) + ") of " : std::string()) +
         "box " + s.box.to_string() + "; global element " + global_element + ", global flat index " + std::to_string(global_flat) + "]";
}

}  // namespace shardinit::detail
