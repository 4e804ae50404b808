#pragma once
// JSON reading as strict as a manifest (or an untrusted file header) needs: nlohmann's parser, plus what it lets through —
// a key repeated in one object (nlohmann keeps the last silently), a NUL byte (it ends nlohmann's
// input early, hiding whatever follows) — and a line and column for every syntax error, including a
// number too large for binary64.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace shardinit::detail {

// A position inside a document: object keys and array indices from the root.
using JsonPath = std::vector<std::variant<std::string, std::size_t>>;

struct DuplicateKey {
  std::string key;
  JsonPath object;  // the object in which `key` appears twice
};

// What a parse accepts beyond the grammar. The depth bound keeps every later walk of the document
// (nlohmann's dump(), comparison and conversion recurse) within a small, fixed stack. The bound on
// values keeps the document's memory in proportion to the text: a value in the DOM takes 16 bytes
// and more, while "[0,0,0,..." spends 2 bytes of text on one; at most one value per 4 bytes of text
// (real manifests and headers have one per 7 or more) bounds the DOM at roughly 12 times the text,
// whose size the callers bound in turn (100 MB).
struct JsonLimits {
  std::size_t max_depth = 64;            // nested arrays and objects; a manifest needs 6, a header 3
  std::size_t bytes_per_value = 4;       // at most text.size() / bytes_per_value + 65536 values
};

struct StrictJson {
  nlohmann::json document;
  std::optional<DuplicateKey> duplicate;  // the first repeated key, if any
};

// Throws Error(parse) "SOURCE: malformed JSON at line L, column C: REASON" for a syntax error, a
// number out of range or a NUL byte, and "SOURCE: JSON nested deeper than N levels at line L,
// column C" or "SOURCE: JSON with more than N values (at line L, column C)" beyond `limits` (found by
// a scan that neither recurses nor allocates, before any parsing).
[[nodiscard]] StrictJson parse_strict_json(std::string_view text, std::string_view source, JsonLimits limits = {});

// A short description of a value for messages, never longer than about kMaxShownBytes and never
// recursing: a number or literal as written, a string quoted and escaped (detail::quote), an array
// or object by its size ("an array of 3 values").
[[nodiscard]] std::string brief(const nlohmann::json& value);

// Where the value at `path` starts in `text`, a document that parse_strict_json accepted: as far
// down the path as it exists (a missing key gives its object), as "line L, column C" (1-based,
// columns in bytes). For messages about a value that is valid JSON but a bad manifest.
[[nodiscard]] std::string locate(std::string_view text, const JsonPath& path);
// The same place as a byte offset into `text` (the order in which an object's keys were written,
// which the parsed document, sorted by key, does not keep).
[[nodiscard]] std::size_t locate_offset(std::string_view text, const JsonPath& path);

}  // namespace shardinit::detail
