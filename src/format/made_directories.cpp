#include "format/made_directories.hpp"

#include <utility>

#include "format/leftovers.hpp"
#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit::detail {

MadeDirectories::MadeDirectories(const std::filesystem::path& given) {
  const std::filesystem::path directory = given.lexically_normal();
  // The missing ones, outermost first.
  std::vector<std::filesystem::path> missing;
  for (std::filesystem::path p = directory; !p.empty() && !std::filesystem::exists(p); p = p.parent_path()) {
    missing.insert(missing.begin(), p);
    if (p == p.parent_path()) break;
  }
  if (!missing.empty()) {
    // Registered first, as one entry (innermost, up to the outermost): a process killed right after
    // making them still leaves nothing.
    leftover_ = register_leftover(missing.back().string(), LeftoverKind::directories, missing.front().string());
    std::error_code first_error;
    for (const auto& p : missing) {
      std::error_code ec;
      if (std::filesystem::create_directory(p, ec)) made_.push_back(p);
      else if (ec && !first_error) first_error = ec;
    }
    if (made_.empty()) {
      unregister_leftover(std::exchange(leftover_, -1));  // another rank made them: its to remove
    } else if (made_.front() != missing.front()) {
      // Another rank made the outer ones: ours start lower.
      unregister_leftover(leftover_);
      leftover_ = register_leftover(made_.back().string(), LeftoverKind::directories, made_.front().string());
    }
    std::error_code ec;
    if (!std::filesystem::is_directory(directory, ec)) {
      abandon();  // a constructor that throws runs no destructor
      throw Error(ErrorKind::io, "cannot make the output directory " + printable(directory.string()) + ": " +
                                     (first_error ? first_error.message() : std::string("something else than a directory is there")));
    }
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    throw Error(ErrorKind::io, "cannot make the output directory " + printable(directory.string()) +
                                   ": something else than a directory is there");
  }
}

void MadeDirectories::abandon() noexcept {
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
    std::error_code ec;
    std::filesystem::remove(*it, ec);  // only while empty
  }
  made_.clear();
  unregister_leftover(std::exchange(leftover_, -1));
}

void MadeDirectories::keep() noexcept {
  unregister_leftover(std::exchange(leftover_, -1));
  made_.clear();
}

}  // namespace shardinit::detail
