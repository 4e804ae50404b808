// The small pieces every message and every untrusted input goes through: printable() and quote()
// (names with control characters, NUL, invalid UTF-8 or megabytes of text stay one bounded line),
// the overflow-checked sizes, the JSON depth bound, and opening inputs without blocking.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <string>

#include "format/regular_file.hpp"
#include "shardinit/error.hpp"
#include "support/files.hpp"
#include "util/checked.hpp"
#include "util/printable.hpp"
#include "util/strict_json.hpp"

namespace shardinit::detail {
namespace {

using ::testing::HasSubstr;
using test::TempDir;

TEST(Printable, EscapesControlCharactersNulAndInvalidUtf8) {
  EXPECT_EQ(printable("plain name.weight"), "plain name.weight");
  EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(printable("line\nbreak\ttab\rcr"), "line\\nbreak\\ttab\\rcr");
  EXPECT_EQ(printable("\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
  // Valid UTF-8 passes; a lone continuation byte, an overlong form, a surrogate and a truncated
  // sequence do not.
  EXPECT_EQ(printable("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(printable("\x80"), "\\x80");
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(printable("\xe2\x82"), "\\xe2\\x82");
  // printable leaves backslashes and quotes (so that it may run over a whole message twice);
  // quote escapes them, so that the quoted name is unambiguous.
  EXPECT_EQ(printable("a\\b\"c"), "a\\b\"c");
  EXPECT_EQ(quote("a\\b\"c\n"), "\"a\\\\b\\\"c\\n\"");
}

TEST(Printable, IsIdempotentOnItsOwnOutput) {
  const std::string once = printable(std::string("x\0y\n\x01\xff", 6));
  EXPECT_EQ(printable(once), once);
  const std::string quoted = quote("n\"a\\me\x02");
  EXPECT_EQ(printable(quoted), quoted);
}

TEST(Printable, CutsLongTextShortAndSaysHowLong) {
  const std::string long_name(1 << 20, 'w');
  const std::string shown = printable(long_name);
  EXPECT_LE(shown.size(), kMaxShownBytes + 32);
  EXPECT_THAT(shown, HasSubstr("...(1048576 bytes)"));
  EXPECT_EQ(printable(long_name, 10), "wwwwwwwwww...(1048576 bytes)");
}

TEST(Checked, SizesThatWrapAreRefused) {
  EXPECT_EQ(checked_mul(std::int64_t{1} << 61, 4), std::nullopt);  // 2^63: one past the largest
  EXPECT_EQ(checked_mul((std::int64_t{1} << 61) - 1, 4), std::numeric_limits<std::int64_t>::max() - 3);
  EXPECT_EQ(checked_mul(std::int64_t{1} << 62, 4), std::nullopt);  // 2^64 would wrap to 0
  EXPECT_EQ(checked_mul(-1, 4), std::nullopt);
  EXPECT_EQ(checked_add(std::numeric_limits<std::int64_t>::max(), 1), std::nullopt);
  EXPECT_EQ(checked_add(std::numeric_limits<std::int64_t>::max() - 1, 1), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(byte_size(3, 8, "w"), 24);
  try {
    (void)byte_size(std::int64_t{1} << 62, 4, "tensor w");
    ADD_FAILURE() << "accepted 2^64 bytes";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_THAT(std::string(e.what()), HasSubstr("tensor w: 4611686018427387904 elements of 4 bytes"));
  }
}

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(StrictJson, DepthIsBoundedBeforeParsing) {
  EXPECT_NO_THROW((void)parse_strict_json(nested(64), "doc"));
  try {
    (void)parse_strict_json(nested(65), "doc");
    ADD_FAILURE() << "accepted 65 levels";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::parse);
    EXPECT_THAT(std::string(e.what()), HasSubstr("doc: JSON nested deeper than 64 levels at line 1, column 65"));
  }
  // Brackets inside strings do not count, escaped quotes do not end a string.
  EXPECT_NO_THROW((void)parse_strict_json("[\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"]", "doc"));
  // A million levels: refused at once, without recursion (a stack overflow would crash the test).
  EXPECT_THROW((void)parse_strict_json(nested(1'000'000), "doc"), Error);
  EXPECT_THROW((void)parse_strict_json("{\"a\":\n" + nested(100), "doc", JsonLimits{.max_depth = 8}), Error);
}

TEST(StrictJson, BriefNeverRepeatsAWholeValue) {
  using nlohmann::json;
  EXPECT_EQ(brief(json(2.5)), "2.5");
  EXPECT_EQ(brief(json("I64")), "\"I64\"");
  EXPECT_EQ(brief(json::array({1, 2, 3})), "an array of 3 values");
  EXPECT_EQ(brief(json::object({{"a", 1}})), "an object of 1 key");
  EXPECT_LE(brief(json(std::string(1 << 20, 'x'))).size(), kMaxShownBytes + 40);
  EXPECT_EQ(brief(json(std::string("a\nb"))), "\"a\\nb\"");
}

TEST(RegularFile, NeverBlocksOnAFifoAndRefusesWhatIsNotARegularFile) {
  TempDir dir;
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Without O_NONBLOCK this open would wait forever for a writer.
  for (const auto& [path, type] : {std::pair{fifo, "a FIFO"}, std::pair{dir.path(), "a directory"},
                                   std::pair{std::filesystem::path("/dev/null"), "a character device"}}) {
    try {
      RegularFile file(path, "manifest");
      ADD_FAILURE() << path << " opened";
    } catch (const NotARegularFile& e) {
      EXPECT_EQ(e.kind(), ErrorKind::io);
      EXPECT_EQ(e.type(), type);
      EXPECT_THAT(std::string(e.what()), HasSubstr("manifest " + path.string() + " is " + type + ", not a regular file"));
    }
  }
  EXPECT_THROW(RegularFile(dir / "missing", "manifest"), Error);
}

TEST(RegularFile, ReadAllIsBoundedEvenWhenTheSizeLies) {
  TempDir dir;
  const auto path = dir / "m.json";
  test::write_all(path, std::string(1000, 'x'));
  const RegularFile file(path, "manifest");
  EXPECT_EQ(file.read_all(1000).size(), 1000u);
  try {
    (void)file.read_all(999);
    ADD_FAILURE() << "read past the limit";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_THAT(std::string(e.what()), HasSubstr("1000 bytes, more than the limit of 999"));
  }
  // A file that grows after it was opened (st_size says 1000): still cut at the limit.
  const RegularFile growing(path, "manifest");
  test::write_all(path, std::string(5000, 'y'));
  EXPECT_THROW((void)growing.read_all(2000), Error);
  // /proc files report size 0 but have content: read to the end.
  const RegularFile proc("/proc/self/status", "file");
  EXPECT_FALSE(proc.read_all(1 << 20).empty());
}

TEST(RegularFile, IdentityFollowsHardAndSymbolicLinks) {
  TempDir dir;
  test::write_all(dir / "a", "x");
  std::filesystem::create_hard_link(dir / "a", dir / "hard");
  std::filesystem::create_symlink(dir / "a", dir / "soft");
  test::write_all(dir / "b", "x");
  EXPECT_EQ(identity_of(dir / "a"), identity_of(dir / "hard"));
  EXPECT_EQ(identity_of(dir / "a"), identity_of(dir / "soft"));
  EXPECT_NE(identity_of(dir / "a"), identity_of(dir / "b"));
  EXPECT_EQ(identity_of(dir / "missing"), std::nullopt);
}

}  // namespace
}  // namespace shardinit::detail
