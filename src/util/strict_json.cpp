#include "util/strict_json.hpp"

#include <algorithm>
#include <optional>
#include <set>

#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit::detail {

namespace {

using nlohmann::json;

// "line L, column C" of byte `offset` (1-based, columns in bytes).
std::string line_and_column(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1);
}

// Builds the document like nlohmann's own DOM parser, tracking where it is so that a repeated key
// can be reported with its place.
class StrictSax final : public nlohmann::json_sax<json> {
 public:
  explicit StrictSax(StrictJson& result) : result_(result) {}

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override { return value(v); }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool string(string_t& v) override { return value(v); }
  bool binary(binary_t& v) override { return value(json::binary(v)); }

  bool start_object(std::size_t) override { return open(json::value_t::object); }
  bool start_array(std::size_t) override { return open(json::value_t::array); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    Frame& frame = frames_.back();
    if (!frame.keys.insert(k).second && !result_.duplicate) {
      result_.duplicate = DuplicateKey{k, path_to_top()};
    }
    frame.position = k;
    pending_ = &(*containers_.back())[k];
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const json::exception& e) override {
    error_position_ = position;
    error_ = e.what();
    if (const auto at = error_.find("] "); at != std::string::npos) error_ = error_.substr(at + 2);
    // nlohmann's own message may already say where; the position is given separately.
    if (const auto at = error_.find(": "); error_.starts_with("parse error at line") && at != std::string::npos) {
      error_ = error_.substr(at + 2);
    }
    return false;
  }

  [[nodiscard]] std::size_t error_position() const { return error_position_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  struct Frame {
    bool array = false;
    std::variant<std::string, std::size_t> position = std::size_t{0};  // current key or index
    std::set<std::string> keys;
  };

  json* place(json&& v) {
    if (containers_.empty()) {
      result_.document = std::move(v);
      return &result_.document;
    }
    json& container = *containers_.back();
    if (container.is_array()) {
      container.push_back(std::move(v));
      return &container.back();
    }
    *pending_ = std::move(v);
    return pending_;
  }
  // After a complete element of an array, move to the next index.
  void advance() {
    if (!frames_.empty() && frames_.back().array) {
      auto& index = std::get<std::size_t>(frames_.back().position);
      ++index;
    }
  }
  template <class V>
  bool value(V&& v) {
    place(json(std::forward<V>(v)));
    advance();
    return true;
  }
  bool open(json::value_t type) {
    containers_.push_back(place(json(type)));
    frames_.push_back(Frame{type == json::value_t::array, std::size_t{0}, {}});
    return true;
  }
  bool close() {
    containers_.pop_back();
    frames_.pop_back();
    advance();
    return true;
  }
  [[nodiscard]] JsonPath path_to_top() const {
    JsonPath path;
    for (std::size_t i = 0; i + 1 < frames_.size(); ++i) path.push_back(frames_[i].position);
    return path;
  }

  StrictJson& result_;
  std::vector<json*> containers_;
  std::vector<Frame> frames_;
  json* pending_ = nullptr;
  std::size_t error_position_ = 0;
  std::string error_;
};

// Walks a valid JSON text token by token, only as deep as a path leads.
class PathWalker {
 public:
  explicit PathWalker(std::string_view text) : text_(text) {}

  std::size_t find(const JsonPath& path) {
    skip_space();
    std::size_t found = at_;
    for (const auto& step : path) {
      const bool descended = std::holds_alternative<std::string>(step) ? enter_key(std::get<std::string>(step))
                                                                        : enter_index(std::get<std::size_t>(step));
      if (!descended) break;
      found = at_;
    }
    return found;
  }

 private:
  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r')) ++at_;
  }
  // At '"': past the closing quote; returns the raw token.
  std::string_view skip_string() {
    const std::size_t start = at_++;
    while (at_ < text_.size() && text_[at_] != '"') at_ += text_[at_] == '\\' ? 2 : 1;
    ++at_;
    return text_.substr(start, std::min(at_, text_.size()) - start);
  }
  void skip_value() {
    skip_space();
    if (at_ >= text_.size()) return;
    const char c = text_[at_];
    if (c == '"') {
      skip_string();
    } else if (c == '{' || c == '[') {
      int depth = 0;
      while (at_ < text_.size()) {
        const char d = text_[at_];
        if (d == '"') {
          skip_string();
          continue;
        }
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') --depth;
        ++at_;
        if (depth == 0) return;
      }
    } else {  // number or literal
      while (at_ < text_.size() && text_[at_] != ',' && text_[at_] != '}' && text_[at_] != ']' && text_[at_] != ' ' &&
             text_[at_] != '\n' && text_[at_] != '\t' && text_[at_] != '\r') {
        ++at_;
      }
    }
  }
  // At an object: moves to the value of `key` and returns true, or stays and returns false.
  bool enter_key(const std::string& key) {
    skip_space();
    if (at_ >= text_.size() || text_[at_] != '{') return false;
    const std::size_t object = at_++;
    for (;;) {
      skip_space();
      if (at_ >= text_.size() || text_[at_] != '"') break;
      const std::string_view token = skip_string();
      skip_space();
      ++at_;  // ':'
      skip_space();
      // The document parsed, so the token is a valid JSON string; decode it to compare.
      if (json::parse(token).get<std::string>() == key) return true;
      skip_value();
      skip_space();
      if (at_ < text_.size() && text_[at_] == ',') ++at_;
    }
    at_ = object;
    return false;
  }
  bool enter_index(std::size_t index) {
    skip_space();
    if (at_ >= text_.size() || text_[at_] != '[') return false;
    const std::size_t array = at_++;
    for (std::size_t i = 0;; ++i) {
      skip_space();
      if (at_ >= text_.size() || text_[at_] == ']') break;
      if (i == index) return true;
      skip_value();
      skip_space();
      if (at_ < text_.size() && text_[at_] == ',') ++at_;
    }
    at_ = array;
    return false;
  }

  std::string_view text_;
  std::size_t at_ = 0;
};

// What the scan found beyond the limits: where, and why.
struct Excess {
  std::size_t offset;
  std::string why;
};

// The first place where `text` goes beyond `limits`, if any: a linear scan of the raw text (strings
// and their escapes skipped) counting nesting and values (an opening bracket, a comma and the first
// value each start one), so that no parser ever sees such a document.
std::optional<Excess> beyond_limits(std::string_view text, const JsonLimits& limits) {
  const std::size_t max_values = text.size() / std::max<std::size_t>(1, limits.bytes_per_value) + 65536;
  std::size_t depth = 0, values = 1;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_depth) return Excess{i, "nested deeper than " + std::to_string(limits.max_depth) + " levels"};
      ++values;
    } else if (c == ']' || c == '}') {
      if (depth > 0) --depth;
    } else if (c == ',') {
      ++values;
    } else {
      continue;
    }
    if (values > max_values) {
      return Excess{i, "with more than " + std::to_string(max_values) + " values (one per " +
                           std::to_string(limits.bytes_per_value) + " bytes of text, and 65536)"};
    }
  }
  return std::nullopt;
}

}  // namespace

std::string brief(const json& value) {
  if (value.is_string()) return detail::quote(value.get_ref<const std::string&>());
  if (value.is_array()) return "an array of " + std::to_string(value.size()) + (value.size() == 1 ? " value" : " values");
  if (value.is_object()) return "an object of " + std::to_string(value.size()) + (value.size() == 1 ? " key" : " keys");
  if (value.is_binary()) return "binary data";
  return value.dump();  // a number, true, false or null: short
}

std::string locate(std::string_view text, const JsonPath& path) {
  return line_and_column(text, PathWalker(text).find(path));
}

std::size_t locate_offset(std::string_view text, const JsonPath& path) { return PathWalker(text).find(path); }

StrictJson parse_strict_json(std::string_view text, std::string_view source, JsonLimits limits) {
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    throw Error(ErrorKind::parse, std::string(source) + ": malformed JSON at " + line_and_column(text, nul) +
                                      ": NUL byte (JSON text cannot contain one)");
  }
  if (const auto excess = beyond_limits(text, limits)) {
    throw Error(ErrorKind::parse, std::string(source) + ": JSON " + excess->why + " at " + line_and_column(text, excess->offset));
  }
  StrictJson result;
  StrictSax sax(result);
  if (!json::sax_parse(text.begin(), text.end(), &sax)) {
    // nlohmann reports the position just past the offending character; a number out of range is
    // reported from its first character.
    std::size_t at = sax.error_position() > 0 ? sax.error_position() - 1 : 0;
    if (sax.error().starts_with("number overflow")) {
      const auto in_number = [](char c) { return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'; };
      at = std::min(at, text.size());
      while (at > 0 && !in_number(text[at])) --at;  // the position may be just past the number
      while (at > 0 && in_number(text[at - 1])) --at;
    }
    throw Error(ErrorKind::parse, std::string(source) + ": malformed JSON at " + line_and_column(text, at) + ": " +
                                      sax.error());
  }
  return result;
}

}  // namespace shardinit::detail
