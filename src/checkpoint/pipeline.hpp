#pragma once
// Generation and I/O overlapped. A rank's byte ranges are cut into pieces (at most kPieceBytes, cut at
// multiples of it from the file's start); `threads` workers generate pieces while the calling thread
// writes the finished ones (init), or the calling thread reads pieces while the workers generate and
// compare them (verify). The calling thread does all the I/O and calls `after_piece` between pieces
// (under MPI: the watchdog's heartbeat; MPI is only ever called from this thread). Memory: at most
// threads + 1 pieces for init, 2 * threads + 1 for verify, whatever the model.
//
// threads = 0: no workers; the calling thread generates each piece and then writes it (or reads it,
// then generates and compares), one or two pieces of memory. That is for a process that has less
// than a core of its own (ranks oversubscribing a node): the other processes keep the cores busy
// while it writes, and workers would only add thread switches and cache misses (measured with 4
// ranks on 2 cores: a fifth less CPU time; docs/architecture.md).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "shardinit/checkpoint/write_plan.hpp"

namespace shardinit::detail {

// 16 MiB: one write call per piece, large enough for any filesystem, small enough for memory.
inline constexpr std::uint64_t kPieceBytes = std::uint64_t{16} << 20;

struct Piece {
  std::size_t file = 0;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(end - begin); }
};

// The pieces of `ranges`, in order.
[[nodiscard]] std::vector<Piece> pieces_of(const std::vector<FileRange>& ranges, std::uint64_t piece_bytes = kPieceBytes);

struct PipelineOptions {
  int threads = 1;                    // generating workers (0: the calling thread, in turn)
  std::function<void()> after_piece;  // on the calling thread, after each piece is written / read
};

using ProducePiece = std::function<void(const Piece&, std::span<std::byte>)>;  // thread-safe
using PieceIo = std::function<void(const Piece&, std::span<std::byte>)>;      // on the calling thread

// Generates every piece and writes it (in the order pieces are ready). The first exception, from a
// worker or from `write`, stops the work and is rethrown here once every worker has stopped.
void generate_and_write(const std::vector<Piece>& pieces, const ProducePiece& produce, const PieceIo& write,
                        const PipelineOptions& options);

// The first difference: the piece (position in `pieces`) and the file offset of its first differing byte.
struct PieceDifference {
  std::size_t piece = 0;
  std::uint64_t offset = 0;
  std::vector<std::byte> expected, found;  // the piece's bytes, for describing the element
};

// Reads every piece and compares it with what `produce` makes; returns the first difference in piece
// order (pieces after a difference are not read), or nothing when all match.
[[nodiscard]] std::optional<PieceDifference> read_and_compare(const std::vector<Piece>& pieces, const ProducePiece& produce,
                                                              const PieceIo& read, const PipelineOptions& options);

}  // namespace shardinit::detail
