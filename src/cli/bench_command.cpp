// `shardinit bench`: elements per second of each initializer, against glibc memset on the same
// buffer in the same run. Under mpirun every rank fills its own buffer at the same time (weak
// scaling) and rank 0 reports the total.

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.hpp"
#include "shardinit/error.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/initializers/colossal.hpp"
#include "mpi/agreement.hpp"
#include "mpi/wait.hpp"
#include "util/checked.hpp"

namespace shardinit::cli {

namespace {

// Fans for the fan-based initializers: those of a square 1024 x 1024 layer.
constexpr Index kBenchFan = 1024;

init::Initializer bench_initializer(const std::string& name) {
  switch (init::parse_kind(name)) {
    case init::Kind::zeros: return init::zeros_();
    case init::Kind::ones: return init::ones_();
    case init::Kind::constant: return init::constant_({0.5});
    case init::Kind::uniform: return init::uniform_();
    case init::Kind::normal: return init::normal_();
    case init::Kind::trunc_normal: return init::trunc_normal_();
    case init::Kind::kaiming_uniform: return init::kaiming_uniform_();
    case init::Kind::kaiming_normal: return init::kaiming_normal_();
    case init::Kind::xavier_uniform: return init::xavier_uniform_();
    case init::Kind::xavier_normal: return init::xavier_normal_();
    case init::Kind::lecun_uniform: return init::lecun_uniform_();
    case init::Kind::lecun_normal: return init::lecun_normal_();
  }
  throw Error(ErrorKind::invalid_argument, "unknown initializer " + name);
}

// Seconds of the slowest rank for one run of `work`, all ranks starting together.
template <class Work>
double timed(const Launch& launch, const Work& work) {
  if (launch.kind == Launch::Kind::mpi) mpi::detail::rendezvous(MPI_COMM_WORLD, "starting a benchmark run");
  const auto start = std::chrono::steady_clock::now();
  work();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (launch.kind == Launch::Kind::mpi) {
    double slowest = 0;
    MPI_Request request;
    MPI_Iallreduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD, &request);
    mpi::detail::wait(MPI_COMM_WORLD, request, "timing a benchmark run");
    seconds = slowest;
  }
  return seconds;
}

// Median seconds of `work` and of `baseline`, run alternately `repeat` times each: this VM's memory
// bandwidth drifts several-fold from moment to moment, and alternating exposes both to the same drift.
template <class Work, class Baseline>
std::pair<double, double> median_seconds_alternating(const Launch& launch, int repeat, const Work& work,
                                                     const Baseline& baseline) {
  std::vector<double> work_runs, baseline_runs;
  for (int r = 0; r < repeat; ++r) {
    work_runs.push_back(timed(launch, work));
    baseline_runs.push_back(timed(launch, baseline));
  }
  std::sort(work_runs.begin(), work_runs.end());
  std::sort(baseline_runs.begin(), baseline_runs.end());
  return {work_runs[work_runs.size() / 2], baseline_runs[baseline_runs.size() / 2]};
}

}  // namespace

int run_bench(const BenchOptions& options, const Launch& launch) {
  const int ranks = launch.kind == Launch::Kind::mpi ? launch.world : 1;
  // Under MPI every step that may fail is agreed: a rank that failed alone would leave the others
  // waiting for its next run.
  const auto agreed = [&launch](std::string_view what, const auto& step) {
    if (launch.kind == Launch::Kind::mpi) mpi::detail::run_agreed(MPI_COMM_WORLD, what, step);
    else step();
  };
  agreed("checking the benchmark options", [&] {
    if (options.elements < 1) throw Error(ErrorKind::invalid_argument, "--elements must be positive");
    if (options.repeat < 1) throw Error(ErrorKind::invalid_argument, "--repeat must be positive");
    for (const std::string& dtype_text : options.dtypes) {
      const DType dtype = parse_dtype(dtype_text);
      // The buffer is rounded up to 64 bytes: that must not wrap either.
      const auto bytes = detail::checked_mul(options.elements, static_cast<std::int64_t>(dtype_size(dtype)));
      if (!bytes || *bytes > std::numeric_limits<std::int64_t>::max() - 63) {
        throw Error(ErrorKind::invalid_argument, "--elements " + std::to_string(options.elements) + ": as many " +
                                                     dtype_text + " elements are more than 2^63 - 1 bytes, more than any memory holds");
      }
    }
    for (const std::string& name : options.initializers) (void)bench_initializer(name);
  });
  for (const std::string& dtype_text : options.dtypes) {
    const DType dtype = parse_dtype(dtype_text);
    const std::size_t bytes = static_cast<std::size_t>(options.elements) * dtype_size(dtype);
    // 64-byte aligned and touched once, so that page faults are not measured.
    std::unique_ptr<std::byte[], decltype(&std::free)> buffer(nullptr, &std::free);
    agreed("allocating the benchmark buffer", [&] {
      buffer.reset(static_cast<std::byte*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
      if (!buffer) {
        throw Error(ErrorKind::io, "--elements " + std::to_string(options.elements) + ": cannot allocate " +
                                       std::to_string(bytes) + " bytes for the benchmark");
      }
    });
    std::memset(buffer.get(), 1, bytes);
    // memset is measured beside every initializer, alternating with it, on the same buffer.
    int memset_value = 0;
    const auto memset_run = [&] {
      std::memset(buffer.get(), ++memset_value & 0xFF, bytes);
      asm volatile("" : : "r"(buffer.get()) : "memory");  // keep the stores
    };
    for (const int threads : options.threads) {
      for (const std::string& name : options.initializers) {
        const init::Initializer initializer = bench_initializer(name);
        const TensorSpec spec{name, {options.elements}, dtype, stream_from_name(name),
                              initializer(init::Fans{kBenchFan, kBenchFan})};
        const TensorFiller filler(options.seed, spec, FillOptions{threads});
        const std::span<std::byte> out(buffer.get(), bytes);
        const auto [seconds, memset_seconds] = median_seconds_alternating(
            launch, options.repeat, [&] { filler.fill_flat(0, options.elements, out); }, memset_run);
        const double rate = static_cast<double>(options.elements) * ranks / seconds;
        const double baseline = static_cast<double>(options.elements) * ranks / memset_seconds;
        if (launch.rank == 0) {
          std::printf(
              "{\"initializer\": \"%s\", \"dtype\": \"%s\", \"threads\": %d, \"ranks\": %d, \"elements\": %lld, "
              "\"seconds\": %.6f, \"elements_per_s\": %.4g, \"memset_elements_per_s\": %.4g, \"ratio_to_memset\": %.4g}\n",
              name.c_str(), dtype_text.c_str(), threads, ranks, static_cast<long long>(options.elements) * ranks, seconds,
              rate, baseline, rate / baseline);
          std::fflush(stdout);
        }
      }
    }
  }
  return kSuccess;
}

}  // namespace shardinit::cli
