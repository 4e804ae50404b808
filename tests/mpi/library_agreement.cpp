// library_agreement: the MPI layer's own agreement, for callers of the library (not the CLI, which
// agrees on its command line first). Every collective function starts by checking that every rank was
// given the same manifest (values, mesh, layouts) and the same output and options: given different ones,
// every rank throws mpi::AgreedError naming the ranks that differ, and nothing is written. Run under
// mpiexec with 2 or more ranks:
//
//   library_agreement SCRATCH_DIR
//
// The summary line is "library_agreement: P passed, F failed".

#include <mpi.h>

#include <cstdio>
#include <filesystem>
#include <string>

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

Manifest manifest_with(int seed, const char* layout) {
  return parse_manifest(R"({"seed": )" + std::to_string(seed) +
                        R"(, "tensors": [{"name": "w", "shape": [12, 8], "init": {"fn": "normal"}, "layout": )" + layout + "}]}");
}

// Runs `call` and expects mpi::AgreedError on this rank with `part` in the message.
template <class Call>
void expect_job_error(const std::string& what, const std::string& part, const Call& call) {
  try {
    call();
    expect(false, what + ": no error");
  } catch (const mpi::AgreedError& e) {
    expect(std::string(e.what()).find(part) != std::string::npos, what + ": message " + e.what());
  } catch (const std::exception& e) {
    expect(false, what + ": not a AgreedError: " + e.what());
  }
}

int run(const fs::path& scratch) {
  const bool last = g_rank == g_world - 1;
  if (g_rank == 0) {
    fs::remove_all(scratch);  // an earlier run's
    fs::create_directories(scratch);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const Manifest same = manifest_with(1, R"({"shard": {"0": [0]}})");
  const Manifest seed = manifest_with(last ? 2 : 1, R"({"shard": {"0": [0]}})");
  const Manifest layout = manifest_with(1, last ? R"({"shard": {"1": [0]}})" : R"({"shard": {"0": [0]}})");
  const fs::path out = scratch / "out.safetensors";
  const std::string rank_text = "rank " + std::to_string(g_world - 1);
  expect_job_error("write, seed", "do not agree on the manifest", [&] { (void)mpi::write_checkpoint(MPI_COMM_WORLD, seed, out); });
  expect_job_error("write, layout", rank_text, [&] { (void)mpi::write_checkpoint(MPI_COMM_WORLD, layout, out); });
  expect_job_error("write, path", "do not agree on the output and options",
                   [&] { (void)mpi::write_checkpoint(MPI_COMM_WORLD, same, last ? scratch / "b.safetensors" : out); });
  expect_job_error("write, overwrite", "do not agree on the output and options",
                   [&] { (void)mpi::write_checkpoint(MPI_COMM_WORLD, same, out, overwriting(last)); });
  expect_job_error("per-rank, seed", "do not agree on the manifest",
                   [&] { (void)mpi::write_rank_checkpoints(MPI_COMM_WORLD, seed, scratch / "ranks"); });
  MPI_Barrier(MPI_COMM_WORLD);
  expect(fs::is_empty(scratch), "nothing was written");
  // Agreeing ranks write and verify; a disagreeing verify is refused too.
  (void)mpi::write_checkpoint(MPI_COMM_WORLD, same, out);
  expect(mpi::verify_checkpoint(MPI_COMM_WORLD, same, out).match, "the agreed file verifies");
  expect_job_error("verify, seed", "do not agree on the manifest", [&] { (void)mpi::verify_checkpoint(MPI_COMM_WORLD, seed, out); });
  return report_totals("library_agreement");
}

}  // namespace

int main(int argc, char** argv) {
  return shardinit::mpi_test::run_mpi_test(
      argc, argv, [&] { return run(argc > 1 ? fs::path(argv[1]) : fs::path("library_agreement.scratch")); });
}
