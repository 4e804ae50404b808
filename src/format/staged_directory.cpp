#include "format/staged_directory.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>

#include "format/leftovers.hpp"
#include "format/regular_file.hpp"
#include "format/reserve_blocks.hpp"
#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit::detail {

namespace {

std::filesystem::path parent_of(const std::filesystem::path& target) {
  const std::filesystem::path normal = target.lexically_normal();
  const std::filesystem::path name = normal.filename().empty() ? normal.parent_path() : normal;
  return name.has_parent_path() ? name.parent_path() : std::filesystem::path(".");
}

std::filesystem::path without_trailing_slash(const std::filesystem::path& target) {
  const std::filesystem::path normal = target.lexically_normal();
  return normal.filename().empty() ? normal.parent_path() : normal;
}

[[noreturn]] void fail(const std::string& what, int error_number) {
  throw Error(ErrorKind::io, what + ": " + std::strerror(error_number));
}

void sync_directory(const std::filesystem::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// The entries of `directory` (names only).
std::vector<std::string> entries_of(const std::filesystem::path& directory) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) names.push_back(entry.path().filename().string());
  if (ec) throw Error(ErrorKind::io, "cannot read the directory " + printable(directory.string()) + ": " + ec.message());
  return names;
}

}  // namespace

void check_replaceable_directory(const std::filesystem::path& given, const OutputPolicy& policy,
                                 const StagedDirectory::Replaceable& replaceable) {
  const std::filesystem::path target = without_trailing_slash(given);
  const std::string shown = printable(given.string());
  check_output_directory(parent_of(given), shown);
  struct stat st {};
  if (::lstat(target.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw Error(ErrorKind::io, "cannot write " + shown + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    throw Error(ErrorKind::io, "refusing to replace " + shown + ": it is " + std::string(file_type_name(st.st_mode)) +
                                   ", and this output is a directory");
  }
  const std::vector<std::string> names = entries_of(target);
  if (names.empty()) return;  // an empty directory: nothing is lost
  for (const std::string& name : names) {
    const std::filesystem::path path = target / name;
    struct stat entry {};
    const bool regular = ::lstat(path.c_str(), &entry) == 0 && S_ISREG(entry.st_mode);
    const FileIdentity identity{static_cast<std::uint64_t>(entry.st_dev), static_cast<std::uint64_t>(entry.st_ino)};
    for (const ProtectedInput& input : policy.inputs) {
      if (regular && input.identity == identity) {
        throw Error(ErrorKind::invalid_argument, "refusing to replace " + shown + ": it holds " + input.description +
                                                     ", an input of this run (choose another output directory)");
      }
    }
    if (!regular || !replaceable(name)) {
      throw Error(ErrorKind::io, "refusing to replace " + shown + ": it holds " + printable(name) +
                                     ", which this output would not write (shardinit replaces only a directory of its own kind of files, "
                                     "even with --force)");
    }
  }
  if (!policy.overwrite) throw Error(ErrorKind::io, "refusing to replace existing directory " + shown + " (use --force)");
}

StagedDirectory::StagedDirectory(std::filesystem::path target, const OutputPolicy& policy, const std::vector<StagedFileSpec>& files,
                                 Replaceable replaceable)
    : target_(without_trailing_slash(target)), policy_(policy), replaceable_(std::move(replaceable)) {
  check_replaceable_directory(target_, policy_, replaceable_);
  const std::filesystem::path parent = parent_of(target_);
  std::uint64_t total = 0;
  for (const StagedFileSpec& f : files) total += f.size;
  check_free_space(parent, total, printable(target_.string()));
  static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device random;
  for (int attempt = 0; staging_.empty(); ++attempt) {
    std::string name(1, '.');
    name += target_.filename().string();
    name += ".tmp-";
    for (int i = 0; i < 6; ++i) name += kLetters[random() % (sizeof kLetters - 1)];
    const std::filesystem::path path = parent / name;
    const LeftoverSignalsBlocked blocked;
    slot_ = register_leftover(path.string(), LeftoverKind::staging_directory);
    if (::mkdir(path.c_str(), 0700) == 0) {
      staging_ = path;
      break;
    }
    const int error = errno;
    unregister_leftover(std::exchange(slot_, -1));
    if (error != EEXIST || attempt >= 100) fail("cannot create a staging directory in " + printable(parent.string()), error);
  }
  // A constructor that throws runs no destructor: the staging directory goes now, not whenever the
  // guardian process gets to it after this one exits.
  try {
    for (const StagedFileSpec& f : files) {
      const std::filesystem::path path = staging_ / f.name;
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) fail("cannot create " + printable(path.string()), errno);
      const int error = reserve_blocks(fd, f.size);
      ::close(fd);
      if (error != 0) {
        fail("cannot reserve " + std::to_string(f.size) + " bytes for " + printable((target_ / f.name).string()), error);
      }
    }
  } catch (...) {
    discard();
    throw;
  }
}

StagedDirectory::~StagedDirectory() { discard(); }

void StagedDirectory::discard() noexcept {
  if (staging_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(staging_, ec);
  staging_.clear();
  unregister_leftover(std::exchange(slot_, -1));
}

void StagedDirectory::commit(const std::vector<StagedFileSpec>& files) {
  const std::string shown = printable(target_.string());
  for (const StagedFileSpec& f : files) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(staging_ / f.name, ec);
    if (ec || size != f.size) {
      throw Error(ErrorKind::io, "cannot write " + printable((target_ / f.name).string()) + ": the file holds " +
                                     (ec ? ec.message() : std::to_string(size)) + " bytes of " + std::to_string(f.size) +
                                     " (disk full or file-size limit?)");
    }
  }
  if (::chmod(staging_.c_str(), 0755) != 0) fail("cannot set permissions of " + shown, errno);
  sync_directory(staging_);
  // Whatever appeared at the target meanwhile is judged as at the start.
  check_replaceable_directory(target_, policy_, replaceable_);
  if (::rename(staging_.c_str(), target_.c_str()) != 0) {
    if (errno != ENOTEMPTY && errno != EEXIST) fail("cannot rename the staged directory into " + shown, errno);
    // A replaceable directory is there: swap the two atomically, then remove the old one's files.
    if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) != 0) {
      fail("cannot replace " + shown, errno);
    }
  }
  // staging_ is now the old directory (or nothing): remove it as the leftover it is.
  std::error_code ec;
  std::filesystem::remove_all(staging_, ec);
  staging_.clear();
  unregister_leftover(std::exchange(slot_, -1));
  sync_directory(parent_of(target_));
}

}  // namespace shardinit::detail
