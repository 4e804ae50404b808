#include "checkpoint/pipeline.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "shardinit/error.hpp"

namespace shardinit::detail {

std::vector<Piece> pieces_of(const std::vector<FileRange>& ranges, std::uint64_t piece_bytes) {
  std::vector<Piece> pieces;
  for (const FileRange& r : ranges) {
    for (std::uint64_t at = r.begin; at < r.end;) {
      const std::uint64_t next = std::min(r.end, (at / piece_bytes + 1) * piece_bytes);
      pieces.push_back(Piece{r.file, at, next});
      at = next;
    }
  }
  return pieces;
}

namespace {

// The memory of one piece: uninitialized (every byte of a piece is generated or read before it is
// used, so zeroing it, as a vector's resize would, is a pass over memory for nothing), and in huge
// pages where the system gives them on request (transparent_hugepage "madvise"): a 16 MiB piece is
// then 8 page faults rather than 4096, and the kernel's copy of it into the page cache walks 8 TLB
// entries rather than 4096.
class PieceBuffer {
 public:
  PieceBuffer() = default;
  explicit PieceBuffer(std::size_t bytes) {
    constexpr std::size_t kHugePage = std::size_t{2} << 20;
    const std::size_t rounded = std::max<std::size_t>(1, (bytes + kHugePage - 1) / kHugePage) * kHugePage;  // never 0
    bytes_.reset(static_cast<std::byte*>(std::aligned_alloc(kHugePage, rounded)));
    if (!bytes_) throw std::bad_alloc();
    (void)::madvise(bytes_.get(), rounded, MADV_HUGEPAGE);  // a hint: without it, ordinary pages
  }
  explicit operator bool() const noexcept { return bytes_ != nullptr; }
  [[nodiscard]] std::byte* get() const noexcept { return bytes_.get(); }

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> bytes_;
};

// Buffers handed between the workers and the calling thread.
struct Exchange {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<PieceBuffer> buffers;
  std::vector<std::size_t> free;                        // buffers nobody uses
  std::deque<std::pair<std::size_t, std::size_t>> ready;  // (piece, buffer)
  std::size_t next = 0;                                 // the next piece to take
  std::exception_ptr error;
  bool stop = false;
  std::size_t buffer_bytes = 0;  // the largest piece: buffers grow to it on first use

  // `threads` workers (at most one per piece) and one buffer more than workers: the calling thread's.
  Exchange(const std::vector<Piece>& pieces, int& threads) {
    threads = std::max(1, std::min<int>(threads, static_cast<int>(pieces.size())));
    buffers.resize(static_cast<std::size_t>(threads) + 1);
    for (std::size_t b = 0; b < buffers.size(); ++b) free.push_back(b);
    for (const Piece& p : pieces) buffer_bytes = std::max(buffer_bytes, p.size());
  }

  // Buffer `b`, allocated (the largest piece's size) on first use: memory only for pieces in flight.
  std::byte* buffer(std::size_t b) {
    if (!buffers[b]) buffers[b] = PieceBuffer(buffer_bytes);
    return buffers[b].get();
  }

  void fail(std::exception_ptr e) {
    const std::lock_guard lock(mutex);
    if (!error) error = std::move(e);
    stop = true;
    changed.notify_all();
  }
};

// Joins the workers on every way out.
class Workers {
 public:
  Workers(Exchange& exchange, int count, const std::function<void()>& work) : exchange_(exchange) {
    for (int i = 0; i < count; ++i) threads_.emplace_back(work);
  }
  ~Workers() {
    {
      const std::lock_guard lock(exchange_.mutex);
      exchange_.stop = true;
    }
    exchange_.changed.notify_all();
    for (auto& t : threads_) t.join();
  }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

 private:
  Exchange& exchange_;
  std::vector<std::thread> threads_;
};

void require_threads(const PipelineOptions& options) {
  if (options.threads < 0) {
    throw Error(ErrorKind::invalid_argument, "threads=" + std::to_string(options.threads) + " must be 0 (in turn) or more");
  }
}

}  // namespace

void generate_and_write(const std::vector<Piece>& pieces, const ProducePiece& produce, const PieceIo& write,
                        const PipelineOptions& options) {
  require_threads(options);
  if (pieces.empty()) return;
  if (options.threads == 0) {  // in turn, on the calling thread alone: one buffer
    int one = 1;
    Exchange x(pieces, one);
    for (const Piece& piece : pieces) {
      const std::span bytes(x.buffer(0), piece.size());
      produce(piece, bytes);
      write(piece, bytes);
      if (options.after_piece) options.after_piece();
    }
    return;
  }
  int threads = options.threads;
  Exchange x(pieces, threads);  // one buffer is being written while the others fill
  const auto work = [&] {
    try {
      for (;;) {
        std::size_t piece = 0, buffer = 0;
        {
          std::unique_lock lock(x.mutex);
          x.changed.wait(lock, [&] { return x.stop || (!x.free.empty() && x.next < pieces.size()) || x.next >= pieces.size(); });
          if (x.stop || x.next >= pieces.size()) return;
          piece = x.next++;
          buffer = x.free.back();
          x.free.pop_back();
        }
        produce(pieces[piece], std::span(x.buffer(buffer), pieces[piece].size()));
        {
          const std::lock_guard lock(x.mutex);
          x.ready.emplace_back(piece, buffer);
        }
        x.changed.notify_all();
      }
    } catch (...) {
      x.fail(std::current_exception());
    }
  };
  Workers workers(x, threads, work);
  for (std::size_t written = 0; written < pieces.size(); ++written) {
    std::size_t piece = 0, buffer = 0;
    {
      std::unique_lock lock(x.mutex);
      x.changed.wait(lock, [&] { return x.error || !x.ready.empty(); });
      if (x.error) std::rethrow_exception(x.error);
      std::tie(piece, buffer) = x.ready.front();
      x.ready.pop_front();
    }
    write(pieces[piece], std::span(x.buffers[buffer].get(), pieces[piece].size()));
    if (options.after_piece) options.after_piece();
    {
      const std::lock_guard lock(x.mutex);
      x.free.push_back(buffer);
    }
    x.changed.notify_all();
  }
}

std::optional<PieceDifference> read_and_compare(const std::vector<Piece>& pieces, const ProducePiece& produce, const PieceIo& read,
                                                const PipelineOptions& options) {
  require_threads(options);
  if (pieces.empty()) return std::nullopt;
  if (options.threads == 0) {  // in turn, on the calling thread alone: two buffers
    int one = 1;
    Exchange x(pieces, one);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const Piece& p = pieces[i];
      const std::span found(x.buffer(0), p.size()), expected(x.buffer(1), p.size());
      read(p, found);
      if (options.after_piece) options.after_piece();
      produce(p, expected);
      const auto [e, f] = std::mismatch(expected.begin(), expected.end(), found.begin());
      if (e != expected.end()) {
        return PieceDifference{i, p.begin + static_cast<std::uint64_t>(e - expected.begin()),
                               std::vector<std::byte>(expected.begin(), expected.end()), std::vector<std::byte>(found.begin(), found.end())};
      }
    }
    return std::nullopt;
  }
  int threads = options.threads;
  Exchange x(pieces, threads);  // one buffer is being read while the others compare
  std::size_t compared = 0;                 // pieces whose comparison is done
  std::optional<PieceDifference> first;     // the difference in the lowest piece so far
  const auto work = [&] {
    try {
      const PieceBuffer expected(x.buffer_bytes);
      for (;;) {
        std::size_t piece = 0, buffer = 0;
        {
          std::unique_lock lock(x.mutex);
          x.changed.wait(lock, [&] { return x.stop || !x.ready.empty(); });
          if (x.ready.empty()) return;  // stopped
          std::tie(piece, buffer) = x.ready.front();
          x.ready.pop_front();
        }
        const Piece& p = pieces[piece];
        produce(p, std::span(expected.get(), p.size()));
        const std::byte* found = x.buffers[buffer].get();
        if (std::memcmp(expected.get(), found, p.size()) != 0) {
          std::size_t at = 0;
          while (expected.get()[at] == found[at]) ++at;
          const std::lock_guard lock(x.mutex);
          if (!first || piece < first->piece) {
            first = PieceDifference{piece, p.begin + at, std::vector<std::byte>(expected.get(), expected.get() + p.size()),
                                    std::vector<std::byte>(found, found + p.size())};
          }
        }
        {
          const std::lock_guard lock(x.mutex);
          x.free.push_back(buffer);
          ++compared;
        }
        x.changed.notify_all();
      }
    } catch (...) {
      x.fail(std::current_exception());
    }
  };
  Workers workers(x, threads, work);
  std::size_t issued = 0;
  for (; issued < pieces.size(); ++issued) {
    std::size_t buffer = 0;
    {
      std::unique_lock lock(x.mutex);
      x.changed.wait(lock, [&] { return x.error || !x.free.empty(); });
      if (x.error) std::rethrow_exception(x.error);
      if (first && first->piece < issued) break;  // nothing after a difference matters
      buffer = x.free.back();
      x.free.pop_back();
    }
    read(pieces[issued], std::span(x.buffer(buffer), pieces[issued].size()));
    if (options.after_piece) options.after_piece();
    {
      const std::lock_guard lock(x.mutex);
      x.ready.emplace_back(issued, buffer);
    }
    x.changed.notify_all();
  }
  {
    std::unique_lock lock(x.mutex);
    x.changed.wait(lock, [&] { return x.error || compared == issued; });
    if (x.error) std::rethrow_exception(x.error);
  }
  return first;
}

}  // namespace shardinit::detail
