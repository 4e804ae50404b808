#pragma once
// User-controlled text inside messages. A tensor name, a JSON key or a path may hold a newline, a
// terminal escape, a NUL (which would cut a C string short) or megabytes of text; every message must
// still be one readable line of bounded length. printable() escapes what is not printable UTF-8 and
// truncates; quote() also adds the quotes messages put around names.

#include <cstddef>
#include <string>
#include <string_view>

namespace shardinit::detail {

// The bytes past which printable() cuts a text short (with a note of its full length).
inline constexpr std::size_t kMaxShownBytes = 200;

// `text` with every control character (including NUL and DEL) and every byte that is not part of
// valid UTF-8 escaped as \n, \t, \r or \xHH, cut after about `max_bytes` bytes of output with
// "...(N bytes)" appended. Printable ASCII and valid UTF-8 pass unchanged, so applying it to a
// message already made of printable() pieces changes nothing.
[[nodiscard]] std::string printable(std::string_view text, std::size_t max_bytes = kMaxShownBytes);

// "\"" + printable(text) + "\"", with a double quote and a backslash inside escaped as \" and \\, so
// that the quoted name is unambiguous.
[[nodiscard]] std::string quote(std::string_view text, std::size_t max_bytes = kMaxShownBytes);

}  // namespace shardinit::detail
