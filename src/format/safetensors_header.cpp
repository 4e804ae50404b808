#include "format/safetensors_header.hpp"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "shardinit/error.hpp"
#include "util/printable.hpp"
#include "util/strict_json.hpp"

namespace shardinit::detail {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& source, const std::string& why) {
  throw Error(ErrorKind::bad_file, source + ": not a valid safetensors file: " + why);
}

// A refusal of the value at `at` of a header that is valid JSON: with its line and column.
[[noreturn]] void bad_at(const std::string& source, std::string_view text, const JsonPath& at, const std::string& why) {
  bad(source, "header " + locate(text, at) + ": " + why);
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::string_view text, std::uint64_t data_size, const std::string& source) {
  // nlohmann stops at a NUL byte as if the input ended there; what follows must not be ignored.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    bad(source, "header is not JSON: it contains a NUL byte at offset " + std::to_string(8 + nul));
  }
  // The reference reader refuses a header that does not open with the object (safetensors'
  // InvalidHeaderStart, safetensors/src/tensor.rs); leading whitespace is not JSON's business here.
  if (text.empty() || text.front() != '{') {
    bad(source, text.empty() ? std::string("the header is empty") : "the header does not start with '{'");
  }
  StrictJson parsed;
  try {
    parsed = parse_strict_json(text, "header");
  } catch (const Error& e) {
    std::string_view why = e.what();
    if (why.starts_with("header: ")) why.remove_prefix(8);
    bad(source, (why.starts_with("JSON nested") ? "header is refused (" : "header is not JSON (") + std::string(why) + ")");
  }
  // nlohmann would keep the last of two entries with one name: an ambiguous file.
  if (parsed.duplicate) {
    bad_at(source, text, parsed.duplicate->object, "header has key " + quote(parsed.duplicate->key) + " twice in one object");
  }
  const json& header = parsed.document;
  if (!header.is_object()) bad(source, "header is not a JSON object");
  SafetensorsHeader result;
  for (const auto& [name, entry] : header.items()) {
    const auto at = [&name](auto... keys) { return JsonPath{name, JsonPath::value_type(keys)...}; };
    if (name == "__metadata__") {
      if (!entry.is_object()) bad_at(source, text, at(), "__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) bad_at(source, text, at(key), "__metadata__ value of " + quote(key) + " is not a string");
        result.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor " + quote(name);
    if (!entry.is_object()) bad_at(source, text, at(), where + " is not an object");
    const auto dtype = entry.find("dtype");
    const auto shape = entry.find("shape");
    const auto offsets = entry.find("data_offsets");
    if (dtype == entry.end() || shape == entry.end() || offsets == entry.end() || entry.size() != 3) {
      bad_at(source, text, at(), where + " must have exactly dtype, shape and data_offsets");
    }
    SafetensorsTensor t;
    t.name = name;
    if (!dtype->is_string() || !parse_safetensors_dtype(dtype->get<std::string>(), t.dtype)) {
      bad_at(source, text, at("dtype"), where + " has dtype " + brief(*dtype) + " (shardinit reads F32, F64, BF16, F16)");
    }
    if (!shape->is_array()) bad_at(source, text, at("shape"), where + " has a shape that is not an array");
    for (std::size_t i = 0; i < shape->size(); ++i) {
      const json& d = (*shape)[i];
      if (!d.is_number_unsigned() || d.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<Index>::max())) {
        bad_at(source, text, at("shape", i), where + " has an invalid dimension " + brief(d));
      }
      t.shape.push_back(static_cast<Index>(d.get<std::uint64_t>()));
    }
    if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned()) {
      bad_at(source, text, at("data_offsets"), where + " has data_offsets that are not two non-negative integers");
    }
    t.begin = (*offsets)[0].get<std::uint64_t>();
    t.end = (*offsets)[1].get<std::uint64_t>();
    if (t.begin > t.end || t.end > data_size) {
      bad_at(source, text, at("data_offsets"), where + " has data_offsets [" + std::to_string(t.begin) + ", " +
                                                    std::to_string(t.end) + "] outside the " + std::to_string(data_size) +
                                                    " bytes of data");
    }
    Index count = 0;
    try {
      count = element_count(t.shape);
    } catch (const Error&) {
      bad_at(source, text, at("shape"), where + " has a shape with too many elements");
    }
    if (static_cast<std::uint64_t>(count) > (t.end - t.begin) / dtype_size(t.dtype) ||
        static_cast<std::uint64_t>(count) * dtype_size(t.dtype) != t.end - t.begin) {
      bad_at(source, text, at("data_offsets"), where + " declares " + std::to_string(t.end - t.begin) + " bytes for " +
                                                    std::to_string(count) + " elements of " +
                                                    std::string(dtype_safetensors_name(t.dtype)));
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
      bad(source, "tensor " + quote(t.name) + " starts at data offset " + std::to_string(t.begin) + ", expected " +
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
