// The pipeline: every piece generated once and written once with its own bytes, at every thread
// count (0: in turn on the calling thread); generation overlaps writing even with one generating thread; the first error stops it and
// is the one rethrown; verify's comparison finds the first difference in piece order.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "checkpoint/pipeline.hpp"
#include "shardinit/error.hpp"

namespace shardinit::detail {
namespace {

using ::testing::HasSubstr;

std::byte byte_of(std::uint64_t offset) { return static_cast<std::byte>((offset * 2654435761u) >> 13); }

void produce(const Piece& p, std::span<std::byte> out) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = byte_of(p.begin + i);
}

std::vector<Piece> some_pieces() {
  return pieces_of({FileRange{0, 0, 100'000}, FileRange{1, 5'000, 37'777}, FileRange{2, 0, 0}}, 4096);
}

TEST(Pieces, CutAtMultiplesOfThePieceSizeFromTheFileStart) {
  const auto pieces = pieces_of({FileRange{3, 1000, 10000}}, 4096);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].begin, 1000u);
  EXPECT_EQ(pieces[0].end, 4096u);
  EXPECT_EQ(pieces[1].end, 8192u);
  EXPECT_EQ(pieces[2].end, 10000u);
  EXPECT_EQ(pieces[2].file, 3u);
}

TEST(GenerateAndWrite, EveryPieceOnceWithItsBytesAtEveryThreadCount) {
  const auto pieces = some_pieces();
  for (int threads : {0, 1, 2, 3, 8, 64}) {  // 0: in turn, on the calling thread
    std::vector<int> written(pieces.size(), 0);
    generate_and_write(
        pieces, produce,
        [&](const Piece& p, std::span<std::byte> bytes) {
          const auto i = static_cast<std::size_t>(&p - pieces.data());
          ++written[i];
          ASSERT_EQ(bytes.size(), p.size());
          for (std::size_t k = 0; k < bytes.size(); ++k) ASSERT_EQ(bytes[k], byte_of(p.begin + k));
        },
        PipelineOptions{threads, {}});
    for (int w : written) EXPECT_EQ(w, 1) << threads;
  }
}

// threads = 0: every piece generated, written or read, and compared on the calling thread, the
// heartbeat after each; a negative count is refused before anything runs.
TEST(Pipeline, ZeroThreadsWorksInTurnOnTheCallingThread) {
  const auto pieces = some_pieces();
  const auto caller = std::this_thread::get_id();
  int calls = 0, beats = 0;
  const auto on_caller = [&](const Piece& p, std::span<std::byte> out) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    ++calls;
    produce(p, out);
  };
  generate_and_write(pieces, on_caller, [&](const Piece&, std::span<std::byte>) { EXPECT_EQ(std::this_thread::get_id(), caller); },
                     PipelineOptions{0, [&] { ++beats; }});
  EXPECT_EQ(calls, static_cast<int>(pieces.size()));
  EXPECT_EQ(beats, static_cast<int>(pieces.size()));
  calls = beats = 0;
  EXPECT_FALSE(read_and_compare(pieces, on_caller, on_caller, PipelineOptions{0, [&] { ++beats; }}).has_value());
  EXPECT_EQ(calls, 2 * static_cast<int>(pieces.size()));
  EXPECT_EQ(beats, static_cast<int>(pieces.size()));
  calls = 0;
  EXPECT_THAT([&] { generate_and_write(pieces, on_caller, on_caller, PipelineOptions{-1, {}}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("threads=-1")));
  EXPECT_THAT([&] { (void)read_and_compare(pieces, on_caller, on_caller, PipelineOptions{-2, {}}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("threads=-2")));
  EXPECT_EQ(calls, 0);
}

// With one generating thread, piece 1 is generated while piece 0 is being written: the write of
// piece 0 waits (up to 10 s) for the generation of piece 1 to start. A serial pipeline never starts it.
TEST(GenerateAndWrite, GenerationOverlapsWritingWithOneThread) {
  const auto pieces = pieces_of({FileRange{0, 0, 3 * 4096}}, 4096);
  std::mutex m;
  std::condition_variable cv;
  bool second_started = false;
  bool overlapped = false;
  generate_and_write(
      pieces,
      [&](const Piece& p, std::span<std::byte> out) {
        if (p.begin == 4096) {
          const std::lock_guard lock(m);
          second_started = true;
          cv.notify_all();
        }
        produce(p, out);
      },
      [&](const Piece& p, std::span<std::byte>) {
        if (p.begin != 0) return;
        std::unique_lock lock(m);
        overlapped = cv.wait_for(lock, std::chrono::seconds(10), [&] { return second_started; });
      },
      PipelineOptions{1, {}});
  EXPECT_TRUE(overlapped);
}

TEST(GenerateAndWrite, TheFirstErrorStopsTheWorkAndIsRethrown) {
  const auto pieces = some_pieces();
  for (int threads : {0, 1, 4}) {
    std::atomic<int> produced{0};
    EXPECT_THAT(
        [&] {
          generate_and_write(
              pieces,
              [&](const Piece& p, std::span<std::byte> out) {
                if (produced++ == 3) throw std::runtime_error("generation failed");
                produce(p, out);
              },
              [](const Piece&, std::span<std::byte>) {}, PipelineOptions{threads, {}});
        },
        ::testing::ThrowsMessage<std::runtime_error>(HasSubstr("generation failed")));
    EXPECT_LT(produced.load(), static_cast<int>(pieces.size()));
    int writes = 0;
    EXPECT_THROW(generate_and_write(
                     pieces, produce,
                     [&](const Piece&, std::span<std::byte>) {
                       if (++writes == 2) throw std::runtime_error("disk full");
                     },
                     PipelineOptions{threads, {}}),
                 std::runtime_error);
    EXPECT_EQ(writes, 2);
  }
}

TEST(ReadAndCompare, FindsTheFirstDifferenceInPieceOrderWhateverTheThreads) {
  const auto pieces = some_pieces();
  // The "file": correct bytes, with differences at two offsets of file 0 and one of file 1.
  const auto read_with = [&](std::vector<std::pair<std::size_t, std::uint64_t>> bad) {
    return [bad, &pieces](const Piece& p, std::span<std::byte> out) {
      produce(p, out);
      for (const auto& [file, offset] : bad) {
        if (file == p.file && offset >= p.begin && offset < p.end) out[offset - p.begin] ^= std::byte{1};
      }
      (void)pieces;
    };
  };
  for (int threads : {0, 1, 2, 5}) {
    EXPECT_FALSE(read_and_compare(pieces, produce, read_with({}), PipelineOptions{threads, {}}).has_value());
    const auto d = read_and_compare(pieces, produce, read_with({{1, 9000}, {0, 77'777}, {0, 50'001}}), PipelineOptions{threads, {}});
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(pieces[d->piece].file, 0u);
    EXPECT_EQ(d->offset, 50'001u);
    EXPECT_NE(d->expected, d->found);
  }
  EXPECT_THROW((void)read_and_compare(
                   pieces, produce, [](const Piece&, std::span<std::byte>) { throw std::runtime_error("cannot read"); },
                   PipelineOptions{2, {}}),
               std::runtime_error);
}

}  // namespace
}  // namespace shardinit::detail
