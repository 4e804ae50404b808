// Single-thread throughput of shardinit's inner kernels, with Google Benchmark.
//
//   philox/*         Philox4x32-10 blocks written to a buffer of N 32-bit words: shardinit's
//                    block_words against Random123's r123::Philox4x32 on the same counters and key
//                    (the two are checked to agree before timing). Items are words.
//   philox/shardinit_simd  the library's vectorized Philox (src/simd), when the tree has it.
//   fill/*           TensorFiller::fill_flat of N elements (one whole 1-D tensor, one call, one thread).
//                    Items are elements; bytes are the bytes written. The label names the
//                    instruction set the vectorized kernels dispatched to.
//   fill_scalar/*    the same with the vectorized kernels switched off (the scalar reference).
//   memset/*         std::memset of the bytes the matching fill writes: the store-bandwidth ceiling.
//
// N runs over 2^20, 2^22 and 2^24. Every buffer is touched once before timing, so page faults are
// not measured. Run: build-bench/benchmarks/shardinit_kernel_bench --benchmark_min_time=0.1

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "shardinit/distributions/distribution.hpp"
#include "shardinit/dtype.hpp"
#include "shardinit/engine/philox.hpp"
#include "shardinit/engine/stream.hpp"
#include "shardinit/fill/fill.hpp"

#ifdef SHARDINIT_BENCH_HAVE_RANDOM123
#include <Random123/philox.h>
#endif

// The library's internal vectorized kernels (src/simd, Highway with run-time dispatch), when this
// source tree has them: their Philox is measured on its own, and every fill is measured twice, with
// the kernels and with the scalar reference (simd::set_enabled(false)).
#if __has_include("simd/kernels.hpp")
#include "simd/kernels.hpp"
#define SHARDINIT_BENCH_HAVE_SIMD 1
#endif

namespace {

constexpr std::uint64_t kSeed = 0x5EED5EED12345678ull;
constexpr std::uint64_t kStream = 0xC0FFEE0012345678ull;

constexpr std::int64_t kMinElements = std::int64_t{1} << 20;
constexpr std::int64_t kMaxElements = std::int64_t{1} << 24;

void sizes(benchmark::internal::Benchmark* b) {
  b->RangeMultiplier(4)->Range(kMinElements, kMaxElements)->Unit(benchmark::kMillisecond);
}

// A buffer of `bytes` bytes with every page already mapped.
std::vector<std::byte> touched_buffer(std::size_t bytes) {
  std::vector<std::byte> buffer(bytes);
  std::memset(buffer.data(), 0x5A, buffer.size());
  return buffer;
}

void set_counts(benchmark::State& state, std::int64_t items_per_iteration, std::int64_t bytes_per_iteration) {
  state.SetItemsProcessed(state.iterations() * items_per_iteration);
  state.SetBytesProcessed(state.iterations() * bytes_per_iteration);
}

// ---- Philox -----------------------------------------------------------------------------------------

void BM_philox_shardinit(benchmark::State& state) {
  const auto words = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint32_t> out(words, 1u);
  const auto key = shardinit::key_from_seed(kSeed);
  for (auto _ : state) {
    std::uint32_t* p = out.data();
    for (std::uint64_t block = 0; block < words / 4; ++block, p += 4) {
      const auto w = shardinit::block_words(key, kStream, block);
      std::memcpy(p, w.data(), sizeof w);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counts(state, state.range(0), state.range(0) * 4);
}
BENCHMARK(BM_philox_shardinit)->Name("philox/shardinit")->Apply(sizes);

#ifdef SHARDINIT_BENCH_HAVE_SIMD
// The vectorized Philox the fills use; checked against the scalar functor before timing.
void BM_philox_shardinit_simd(benchmark::State& state) {
  const auto words = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint32_t> out(words, 1u);
  const auto key = shardinit::key_from_seed(kSeed);
  shardinit::simd::philox_words(key, kStream, 0, words / 4, out.data());
  for (std::uint64_t block : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{words / 4 - 1}}) {
    const auto w = shardinit::block_words(key, kStream, block);
    if (std::memcmp(w.data(), out.data() + 4 * block, sizeof w) != 0) {
      state.SkipWithError("simd::philox_words disagrees with shardinit::Philox4x32");
      return;
    }
  }
  for (auto _ : state) {
    shardinit::simd::philox_words(key, kStream, 0, words / 4, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(shardinit::simd::target_name());
  set_counts(state, state.range(0), state.range(0) * 4);
}
BENCHMARK(BM_philox_shardinit_simd)->Name("philox/shardinit_simd")->Apply(sizes);
#endif

#ifdef SHARDINIT_BENCH_HAVE_RANDOM123
r123::Philox4x32::ctr_type r123_counter(std::uint64_t stream, std::uint64_t block) {
  return {{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
           static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}};
}
r123::Philox4x32::key_type r123_key(std::uint64_t seed) {
  return {{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
}

// shardinit's Philox must be Random123's Philox4x32-10 word for word; a benchmark of a different
// function would be meaningless, so a mismatch stops the benchmark with an error.
bool r123_agrees() {
  const auto key = shardinit::key_from_seed(kSeed);
  const r123::Philox4x32 r123_philox;
  for (std::uint64_t block : {0ull, 1ull, 12345ull, 0xFFFFFFFFull, 0x123456789ABCull}) {
    const auto mine = shardinit::block_words(key, kStream, block);
    const auto theirs = r123_philox(r123_counter(kStream, block), r123_key(kSeed));
    for (int i = 0; i < 4; ++i) {
      if (mine[i] != theirs.v[i]) return false;
    }
  }
  return true;
}

void BM_philox_random123(benchmark::State& state) {
  if (!r123_agrees()) {
    state.SkipWithError("shardinit::Philox4x32 and r123::Philox4x32 disagree");
    return;
  }
  const auto words = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint32_t> out(words, 1u);
  const r123::Philox4x32 philox;
  const auto key = r123_key(kSeed);
  for (auto _ : state) {
    std::uint32_t* p = out.data();
    for (std::uint64_t block = 0; block < words / 4; ++block, p += 4) {
      const auto w = philox(r123_counter(kStream, block), key);
      std::memcpy(p, w.v, sizeof w.v);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counts(state, state.range(0), state.range(0) * 4);
}
BENCHMARK(BM_philox_random123)->Name("philox/random123")->Apply(sizes);
#endif

// ---- fills ------------------------------------------------------------------------------------------

// The parameters torch.nn.init uses by default (uniform_: [0, 1), normal_: N(0, 1), trunc_normal_:
// N(0, 1) cut at [-2, 2]), so scripts/bench-peers.sh compares like with like.
void BM_fill(benchmark::State& state, bool vectorized, shardinit::DType dtype, shardinit::Distribution distribution) {
#ifdef SHARDINIT_BENCH_HAVE_SIMD
  // Restores the library's default on every way out of this function.
  struct KernelSwitch {
    bool previous = shardinit::simd::enabled();
    explicit KernelSwitch(bool on) { shardinit::simd::set_enabled(on); }
    ~KernelSwitch() { shardinit::simd::set_enabled(previous); }
  } kernels(vectorized);
  state.SetLabel(vectorized ? shardinit::simd::target_name() : "scalar reference");
#else
  (void)vectorized;
#endif
  const shardinit::Index n = state.range(0);
  shardinit::TensorSpec spec;
  spec.name = "bench";
  spec.shape = {n};
  spec.dtype = dtype;
  spec.stream = kStream;
  spec.distribution = distribution;
  const shardinit::TensorFiller filler(kSeed, spec);
  const std::size_t bytes = static_cast<std::size_t>(n) * shardinit::dtype_size(dtype);
  auto out = touched_buffer(bytes);
  for (auto _ : state) {
    filler.fill_flat(0, n, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counts(state, n, static_cast<std::int64_t>(bytes));
}
#define SHARDINIT_FILL_BENCHMARKS(prefix, vectorized)                                                          \
  BENCHMARK_CAPTURE(BM_fill, f32_uniform, vectorized, shardinit::DType::f32, shardinit::Uniform{0.0, 1.0})     \
      ->Name(prefix "/f32/uniform")->Apply(sizes);                                                             \
  BENCHMARK_CAPTURE(BM_fill, f32_normal, vectorized, shardinit::DType::f32, shardinit::Normal{0.0, 1.0})       \
      ->Name(prefix "/f32/normal")->Apply(sizes);                                                              \
  BENCHMARK_CAPTURE(BM_fill, f32_trunc_normal, vectorized, shardinit::DType::f32,                              \
                    shardinit::TruncNormal{0.0, 1.0, -2.0, 2.0})                                               \
      ->Name(prefix "/f32/trunc_normal")->Apply(sizes);                                                        \
  BENCHMARK_CAPTURE(BM_fill, bf16_normal, vectorized, shardinit::DType::bf16, shardinit::Normal{0.0, 1.0})     \
      ->Name(prefix "/bf16/normal")->Apply(sizes)

SHARDINIT_FILL_BENCHMARKS("fill", true);
#ifdef SHARDINIT_BENCH_HAVE_SIMD
SHARDINIT_FILL_BENCHMARKS("fill_scalar", false);
#endif

// ---- memset baseline ----------------------------------------------------------------------------------

// Items are elements of `element_size` bytes, so items_per_second compares directly with a fill of
// that dtype.
void BM_memset(benchmark::State& state, std::size_t element_size) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0)) * element_size;
  auto out = touched_buffer(bytes);
  int value = 0;
  for (auto _ : state) {
    std::memset(out.data(), value, bytes);
    value = (value + 1) & 0xFF;  // a different value each time, so no pass can be elided
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counts(state, state.range(0), static_cast<std::int64_t>(bytes));
}
BENCHMARK_CAPTURE(BM_memset, f32_bytes, std::size_t{4})->Name("memset/f32_bytes")->Apply(sizes);
BENCHMARK_CAPTURE(BM_memset, bf16_bytes, std::size_t{2})->Name("memset/bf16_bytes")->Apply(sizes);

}  // namespace

BENCHMARK_MAIN();
