#include "util/printable.hpp"

#include <cstdint>

namespace shardinit::detail {

namespace {

// The length of the valid UTF-8 sequence starting at text[at] (1 to 4), or 0 if it is not one:
// overlong forms, surrogates and code points beyond U+10FFFF are not valid (RFC 3629).
std::size_t utf8_sequence(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[i]); };
  const std::uint8_t lead = byte(at);
  std::size_t length = 0;
  std::uint32_t min = 0, code = 0;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) length = 2, min = 0x80, code = lead & 0x1F;
  else if (lead >= 0xE0 && lead <= 0xEF) length = 3, min = 0x800, code = lead & 0x0F;
  else if (lead >= 0xF0 && lead <= 0xF4) length = 4, min = 0x10000, code = lead & 0x07;
  else return 0;
  if (at + length > text.size()) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(at + i) & 0x3F);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

std::string escape(std::string_view text, std::size_t max_bytes, bool quote) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    if (out.size() >= max_bytes) {
      out += "...(" + std::to_string(text.size()) + " bytes)";
      return out;
    }
    const auto c = static_cast<std::uint8_t>(text[at]);
    const std::size_t length = utf8_sequence(text, at);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\' && quote) out += "\\\\";
    else if (c == '"' && quote) out += "\\\"";
    else if (c < 0x20 || c == 0x7F || length == 0) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out.append(text.substr(at, length));
      at += length;
      continue;
    }
    ++at;
  }
  return out;
}

}  // namespace

std::string printable(std::string_view text, std::size_t max_bytes) { return escape(text, max_bytes, false); }

std::string quote(std::string_view text, std::size_t max_bytes) {
  std::string out(1, '"');
  out += escape(text, max_bytes, true);
  out += '"';
  return out;
}

}  // namespace shardinit::detail
