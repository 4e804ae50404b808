#pragma once
// Opening files that anyone may have handed us. open(2) of a FIFO without a writer blocks forever, a
// terminal blocks until someone types, /dev/zero never ends: so every input is opened with
// O_NONBLOCK (which makes such an open return at once), checked with fstat to be a regular file,
// and only then read (with O_NONBLOCK cleared). Reads are bounded by a size limit.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "shardinit/error.hpp"

namespace shardinit::detail {

// Which file a path names (device and inode, as stat gives them): two paths with the same identity
// are the same file, through hard links, symbolic links or different spellings.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

// The identity of the file at `path` (following symbolic links), or nothing if there is none.
[[nodiscard]] std::optional<FileIdentity> identity_of(const std::filesystem::path& path);

// "a FIFO", "a directory", "a character device", ... : what a non-regular st_mode is, for messages.
[[nodiscard]] std::string_view file_type_name(unsigned mode);

// What RegularFile throws for a path that exists but is not a regular file.
class NotARegularFile : public Error {
 public:
  NotARegularFile(ErrorKind kind, const std::string& message, std::string_view type) : Error(kind, message), type_(type) {}
  // "a FIFO", "a directory", ... (file_type_name)
  [[nodiscard]] std::string_view type() const noexcept { return type_; }

 private:
  std::string_view type_;
};

// A regular file open for reading; closed by the destructor.
class RegularFile {
 public:
  // Opens `path` (what: "manifest", "safetensors file", ... for messages). Throws Error(io) "cannot
  // read WHAT PATH: REASON" if it cannot be opened, and NotARegularFile(not_regular_kind) "WHAT PATH is
  // a FIFO, not a regular file" (or a directory, a device, ...) without ever blocking.
  RegularFile(const std::filesystem::path& path, std::string_view what, ErrorKind not_regular_kind = ErrorKind::io);
  ~RegularFile();
  RegularFile(RegularFile&& other) noexcept;
  RegularFile& operator=(RegularFile&&) = delete;
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  [[nodiscard]] int fd() const noexcept { return fd_; }
  // Gives up the descriptor: the caller closes it.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }  // at open time
  [[nodiscard]] const FileIdentity& identity() const noexcept { return identity_; }

  // The whole file, read to its end; throws Error(invalid_argument) "WHAT PATH is larger than LIMIT
  // bytes" if it holds more than `limit` bytes (checked while reading: the file may grow), Error(io)
  // if a read fails.
  [[nodiscard]] std::string read_all(std::uint64_t limit) const;

  // Reads out.size() bytes at `offset`, or fewer where the file ends: returns how many. Throws
  // Error(io) if a read fails.
  [[nodiscard]] std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) const;

 private:
  std::filesystem::path path_;
  std::string what_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  FileIdentity identity_;
};

}  // namespace shardinit::detail
