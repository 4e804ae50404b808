#include "io/safetensors_header.hpp"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "shardinit/error.hpp"
#include "util/strict_json.hpp"

namespace shardinit::detail {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& source, const std::string& why) {
  throw Error(ErrorKind::bad_file, source + ": not a valid safetensors file: " + why);
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::string_view text, std::uint64_t data_size, const std::string& source) {
  // nlohmann stops at a NUL byte as if the input ended there; what follows must not be ignored.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    bad(source, "header is not JSON: it contains a NUL byte at offset " + std::to_string(8 + nul));
  }
  StrictJson parsed;
  try {
    parsed = parse_strict_json(text, "header");
  } catch (const Error& e) {
    bad(source, std::string("header is not JSON (") + e.what() + ")");
  }
  // nlohmann would keep the last of two entries with one name: an ambiguous file.
  if (parsed.duplicate) bad(source, "header has key \"" + parsed.duplicate->key + "\" twice in one object");
  const json& header = parsed.document;
  if (!header.is_object()) bad(source, "header is not a JSON object");
  SafetensorsHeader result;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) bad(source, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) bad(source, "__metadata__ value of \"" + key + "\" is not a string");
        result.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor \"" + name + "\"";
    if (!entry.is_object()) bad(source, where + " is not an object");
    const auto dtype = entry.find("dtype");
    const auto shape = entry.find("shape");
    const auto offsets = entry.find("data_offsets");
    if (dtype == entry.end() || shape == entry.end() || offsets == entry.end() || entry.size() != 3) {
      bad(source, where + " must have exactly dtype, shape and data_offsets");
    }
    SafetensorsTensor t;
    t.name = name;
    if (!dtype->is_string() || !parse_safetensors_dtype(dtype->get<std::string>(), t.dtype)) {
      bad(source, where + " has dtype " + dtype->dump() + " (shardinit reads F32, F64, BF16, F16)");
    }
    if (!shape->is_array()) bad(source, where + " has a shape that is not an array");
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned() || d.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<Index>::max())) {
        bad(source, where + " has an invalid dimension " + d.dump());
      }
      t.shape.push_back(static_cast<Index>(d.get<std::uint64_t>()));
    }
    if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned()) {
      bad(source, where + " has data_offsets that are not two non-negative integers");
    }
    t.begin = (*offsets)[0].get<std::uint64_t>();
    t.end = (*offsets)[1].get<std::uint64_t>();
    if (t.begin > t.end || t.end > data_size) {
      bad(source, where + " has data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                    "] outside the " + std::to_string(data_size) + " bytes of data");
    }
    Index count = 0;
    try {
      count = element_count(t.shape);
    } catch (const Error&) {
      bad(source, where + " has a shape with too many elements");
    }
    if (static_cast<std::uint64_t>(count) > (t.end - t.begin) / dtype_size(t.dtype) ||
        static_cast<std::uint64_t>(count) * dtype_size(t.dtype) != t.end - t.begin) {
      bad(source, where + " declares " + std::to_string(t.end - t.begin) + " bytes for " + std::to_string(count) +
                    " elements of " + std::string(dtype_safetensors_name(t.dtype)));
    }
    result.tensors.push_back(std::move(t));
  }
  // The tensors must tile the data exactly: no overlap, no hole, nothing after the last one.
  std::sort(result.tensors.begin(), result.tensors.end(), [](const auto& x, const auto& y) {
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  std::uint64_t expected = 0;
  for (const auto& t : result.tensors) {
    if (t.begin != expected) {
      bad(source, "tensor \"" + t.name + "\" starts at data offset " + std::to_string(t.begin) + ", expected " +
                    std::to_string(expected) + (t.begin < expected ? " (it overlaps the one before)" : " (a hole)"));
    }
    expected = t.end;
  }
  if (expected != data_size) {
    bad(source, "tensors cover " + std::to_string(expected) + " bytes of data but the file holds " + std::to_string(data_size));
  }
  return result;
}

}  // namespace shardinit::detail
