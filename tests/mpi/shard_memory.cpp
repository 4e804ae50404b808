// shard_memory: each rank's memory is bounded by its own shard (or by the I/O piece), never by the
// global tensor. Run under mpiexec with 4 ranks:
//
//   shard_memory fill  SCRATCH_DIR    mpi::fill_local of a rank's shard of an f32 [8192, 8192] tensor
//   shard_memory write SCRATCH_DIR    mpi::write_checkpoint (then mpi::verify_checkpoint) of a file
//                                     holding that tensor and a replicated f32 [4096, 8192] one
//
// Peak resident memory is getrusage(RUSAGE_SELF).ru_maxrss (KiB, a high-water mark that never goes
// down, hence one mode per process). Each rank measures its own growth from a baseline taken after
// MPI_Init, manifest parsing and a small warm-up call of the same function; rank 0 prints every
// rank's figures.
//
// Bounds (MiB = 2^20 bytes; the global tensor is 256 MiB, the row-split shard 64 MiB at 4 ranks):
//
//   fill:   growth <= shard * 1.25 + 32 MiB = 112 MiB. The caller's output buffer (the shard, 64 MiB)
//           is necessarily resident once filled; fill_local must work in place, so all else is small
//           temporaries. The 25 % covers allocator rounding; the 32 MiB covers code and data pages
//           touched for the first time and MPI's own lazily allocated buffers. A fill that went
//           through the whole tensor (256 MiB) or even one extra shard-sized copy (128 MiB) fails.
//
//   write:  growth <= 64 MiB piece * 1.25 + 32 MiB + 3 * A = 124 MiB. mpi::write_checkpoint moves at
//           most one 64 MiB piece per rank per collective call (kPieceBytes in
//           src/mpi/collective_checkpoint.cpp). A is the MPI-IO aggregation buffer, a setting of MPI,
//           not of shardinit: Open MPI's OMPIO (the default io component) gives its aggregator rank
//           buffers of io_ompio_bytes_per_agg bytes (32 MiB by default); measured on the aggregator,
//           rank 0: +1.5 A while writing, +2.5 A while verifying (ROMIO: +0). So that the bound
//           measures shardinit, this program sets OMPI_MCA_io_ompio_bytes_per_agg to 4 MiB unless the
//           environment sets it, and allows 3 A. The replicated [4096, 8192] tensor (128 MiB) is
//           written by ONE rank in two pieces: a writer that held its whole box (128 MiB), or a rank
//           holding the tensor (256 MiB) or the file (384 MiB), fails.
//
//   verify: growth <= 2 pieces * 1.25 + 32 MiB + 3 * A = 204 MiB: mpi::verify_checkpoint holds the
//           piece it reads and the piece it recomputes.
//
// The contents are spot-checked against TensorFiller::fill_flat (fill) and mpi::verify_checkpoint
// (write); the summary line is "shard_memory: ...: P passed, F failed".

#include <mpi.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mpi/check.hpp"
#include "shardinit/error.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/mpi/mpi.hpp"

namespace fs = std::filesystem;
using namespace shardinit;

using namespace shardinit::mpi_test;

namespace {

// WriteOptions that replace an existing output, the rest at their defaults.
WriteOptions overwriting(bool overwrite = true) {
  WriteOptions options;
  options.overwrite = overwrite;
  return options;
}

constexpr double kMiB = 1024.0 * 1024.0;


double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0 / kMiB;  // Linux: KiB
}

// Gathers (before, after) from every rank, prints them on rank 0, checks growth <= bound everywhere.
void report(const char* what, double before, double after, double bound_mib) {
  const double mine[2] = {before, after};
  std::vector<double> all(2 * static_cast<std::size_t>(g_world));
  MPI_Gather(mine, 2, MPI_DOUBLE, all.data(), 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (g_rank == 0) {
    double worst = 0;
    for (int r = 0; r < g_world; ++r) {
      const double b = all[2 * r], a = all[2 * r + 1];
      worst = std::max(worst, a - b);
      std::printf("shard_memory: %-6s rank %d: peak RSS %7.1f MiB -> %7.1f MiB, growth %6.1f MiB (bound %.1f MiB)\n", what, r, b, a,
                  a - b, bound_mib);
    }
    std::printf("shard_memory: %-6s largest growth %.1f MiB, bound %.1f MiB\n", what, worst, bound_mib);
    std::fflush(stdout);
  }
  char text[160];
  std::snprintf(text, sizeof text, "%s: peak RSS grew by %.1f MiB, bound %.1f MiB", what, after - before, bound_mib);
  expect(after - before <= bound_mib, text);
}

// OMPIO's aggregation buffer (see the bounds above), in MiB.
constexpr const char* kAggregatorVariable = "OMPI_MCA_io_ompio_bytes_per_agg";
double aggregator_mib() {
  const char* text = std::getenv(kAggregatorVariable);
  return (text != nullptr ? std::strtod(text, nullptr) : 32.0 * kMiB) / kMiB;
}

constexpr const char* kManifest = R"({
  "seed": 20240611,
  "tensors": [
    {"name": "big.weight", "shape": [8192, 8192], "dtype": "f32", "init": {"fn": "normal", "std": 0.02},
     "layout": {"shard": {"0": [0]}}},
    {"name": "big.replicated", "shape": [4096, 8192], "dtype": "f32", "init": {"fn": "uniform", "a": -1, "b": 1}}
  ]
})";

void run_fill(const Manifest& manifest, const ProcessMesh& mesh) {
  const ManifestTensor& t = manifest.tensors.at(0);
  const Box box = local_box(t.shape, t.layout, mesh, g_rank);
  const std::size_t shard_bytes = static_cast<std::size_t>(box.element_count()) * dtype_size(t.dtype);
  {  // warm-up: the same code path on a small tensor, so first-touch costs are in the baseline
    TensorSpec small = t.spec();
    small.shape = {64, 64};
    std::vector<std::byte> buffer(static_cast<std::size_t>(local_box(small.shape, t.layout, mesh, g_rank).element_count()) * 4);
    (void)mpi::fill_local(MPI_COMM_WORLD, manifest.seed, small, t.layout, mesh, buffer);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const double before = peak_rss_mib();
  // Uninitialized on purpose: the pages become resident as fill_local writes them.
  std::unique_ptr<std::byte[]> shard(new std::byte[shard_bytes]);
  const Box got = mpi::fill_local(MPI_COMM_WORLD, manifest.seed, t.spec(), t.layout, mesh, std::span(shard.get(), shard_bytes)).box;
  const double after = peak_rss_mib();
  expect(got.start == box.start && got.extent == box.extent, "fill_local returned the expected box");
  if (g_rank == 0) {
    std::printf("shard_memory: fill   tensor %s f32 = %.0f MiB global, %.0f MiB shard per rank (%d ranks)\n",
                shape_to_string(t.shape).c_str(), static_cast<double>(element_count(t.shape)) * 4 / kMiB, shard_bytes / kMiB, g_world);
  }
  report("fill", before, after, shard_bytes / kMiB * 1.25 + 32);

  // Spot check: a few rows of the shard equal the same elements of the whole tensor.
  const TensorFiller filler(manifest.seed, t.spec());
  const Index row = t.shape[1];
  std::vector<std::byte> want(static_cast<std::size_t>(row) * 4);
  for (Index r : {Index{0}, box.extent[0] / 2, box.extent[0] - 1}) {
    if (r < 0 || r >= box.extent[0]) continue;
    filler.fill_flat((box.start[0] + r) * row, row, want);
    expect(std::memcmp(want.data(), shard.get() + r * row * 4, want.size()) == 0,
           "shard row " + std::to_string(r) + " (global row " + std::to_string(box.start[0] + r) + ") equals the whole fill");
  }
}

void run_write(const Manifest& manifest, const fs::path& scratch) {
  const fs::path file = scratch / "big.safetensors";
  {  // warm-up: MPI-IO and the write path on a tiny manifest
    const Manifest tiny = parse_manifest(R"({"seed": 1, "tensors": [{"name": "t", "shape": [64, 64], "init": {"fn": "normal"},
                                            "layout": {"shard": {"0": [0]}}}]})");
    (void)mpi::write_checkpoint(MPI_COMM_WORLD, tiny, scratch / "tiny.safetensors", overwriting());
    (void)mpi::verify_checkpoint(MPI_COMM_WORLD, tiny, scratch / "tiny.safetensors");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const double before = peak_rss_mib();
  const WriteStats stats = mpi::write_checkpoint(MPI_COMM_WORLD, manifest, file, overwriting());
  const double after_write = peak_rss_mib();
  if (g_rank == 0) {
    std::printf("shard_memory: write  file %.0f MiB (f32 [8192, 8192] row-split + f32 [4096, 8192] replicated), %d ranks, "
                "%s=%s\n",
                static_cast<double>(stats.bytes) / kMiB, g_world, kAggregatorVariable, std::getenv(kAggregatorVariable));
  }
  report("write", before, after_write, 64 * 1.25 + 32 + 3 * aggregator_mib());
  const VerifyResult result = mpi::verify_checkpoint(MPI_COMM_WORLD, manifest, file);
  const double after_verify = peak_rss_mib();
  expect(result.match, "mpi::verify_checkpoint of the big file: " + result.message);
  report("verify", before, after_verify, 2 * 64 * 1.25 + 32 + 3 * aggregator_mib());
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank == 0) fs::remove(file);
}

}  // namespace

int main(int argc, char** argv) {
  setenv(kAggregatorVariable, "4194304", 0);  // before MPI_Init, which reads MCA parameters; the environment wins
  return shardinit::mpi_test::run_mpi_test(argc, argv, [&] {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (argc != 3 || (mode != "fill" && mode != "write")) {
      if (g_rank == 0) std::fprintf(stderr, "usage: shard_memory fill|write SCRATCH_DIR\n");
      return 2;
    }
    const fs::path scratch = argv[2];
    if (g_rank == 0) {
      fs::remove_all(scratch);
      fs::create_directories(scratch);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const Manifest manifest = parse_manifest(kManifest);
    const ProcessMesh mesh = manifest_mesh(manifest, g_world);
    if (mode == "fill") run_fill(manifest, mesh);
    else run_write(manifest, scratch);
    return report_totals("shard_memory: " + mode + " np" + std::to_string(g_world));
  });
}
