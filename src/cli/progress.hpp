#pragma once
// Progress on stderr for long runs: only when stderr is a terminal, at most a few times a second,
// erased at the end so that the summary line stands alone.

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace shardinit::cli {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO) == 1) {}
  ~ProgressLine() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
  }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void update(std::int64_t done, std::int64_t total) {
    if (!enabled_ || total <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (shown_ && now - last_ < std::chrono::milliseconds(250) && done < total) return;
    last_ = now;
    shown_ = true;
    std::fprintf(stderr, "\rshardinit: %5.1f%% (%lld of %lld elements)", 100.0 * static_cast<double>(done) / static_cast<double>(total),
                 static_cast<long long>(done), static_cast<long long>(total));
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace shardinit::cli
