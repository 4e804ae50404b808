#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "shardinit/checkpoint/write_plan.hpp"

namespace shardinit::cli {

// Exit statuses of the shardinit command (docs/cli.md).
enum ExitStatus : int {
  kSuccess = 0,
  kMismatch = 1,       // verify: the file does not match the manifest
  kInvalidInput = 2,   // bad command line or manifest
  kIoError = 3,        // a file could not be read or written
  kInternalError = 4,  // a bug: please report it
};

// How this process was started, which decides what it computes.
struct Launch {
  enum class Kind {
    single,      // one process: every tensor whole
    mpi,         // under mpirun (MPI is initialized): this rank's shards, collective I/O
    one_rank,    // --rank/--world or RANK/WORLD_SIZE without MPI: just that rank's shards
  };
  Kind kind = Kind::single;
  int rank = 0;
  int world = 1;
  // The cores this process may fill with: its CPUs, shared with the other processes of its node that
  // may run on them (util/core_share.hpp). Picks the default fill threads; never changes a value.
  double cores = 1;
};

// --hf CONFIG and the choices of the manifest made from it (docs/models.md).
struct ModelOptions {
  std::filesystem::path config;  // empty: no --hf
  std::string init = "hf";       // hf or colossal
  int tp = 1;
  std::string tp_mode = "1d";
  int pp = 1;
  std::optional<int> dp;
  int ep = 1;                    // expert parallelism (MoE models)
  std::string dtype;             // empty: the config's torch_dtype, else f32
  std::uint64_t seed = 42;
};

// The model a --hf run starts from: the config's bytes, the manifest made from it (text and parsed;
// its source is the config, so no output may replace the config).
struct ModelManifest {
  std::string config_text;
  std::string manifest_text;       // with the options' layouts
  std::string kept_manifest_text;  // without layouts: what the directory keeps (model_companions)
  Manifest manifest;
};
// Throws Error naming the bad option or config value.
[[nodiscard]] ModelManifest make_model_manifest(const ModelOptions& options);
// config.json and shardinit-manifest.json: what a --hf directory holds beside the weights.
[[nodiscard]] std::vector<CompanionFile> model_companions(const ModelManifest& model);
inline constexpr const char* kModelManifestFile = "shardinit-manifest.json";

// More fill threads than this is surely a typo (the option exists to use a node's cores).
inline constexpr int kMaxThreads = 4096;

struct CommonOptions {
  std::filesystem::path manifest;
  ModelOptions model;                                  // --hf CONFIG instead of a manifest
  std::optional<std::filesystem::path> per_rank_dir;  // per-rank files instead of one global file
  bool quiet = false;
  int threads = 0;  // 0: chosen by fill_threads() from the cores this process may use
  std::string format;          // --format: "safetensors", "hf"; empty: safetensors (verify: hf for a directory)
  std::string max_shard_size;  // --max-shard-size, for hf; empty: huggingface_hub's 5GB
  OutputRequest request;       // what the options say, once resolve_output() has run
};

// Resolves --per-rank, --format and --max-shard-size into options.request for the output (or, for
// verify, the input) at `target`. Throws Error(invalid_argument) naming a bad value.
void resolve_output(CommonOptions& options, const std::filesystem::path& target, bool verifying);

struct InitOptions : CommonOptions {
  std::filesystem::path output;
  bool force = false;
};

struct VerifyOptions : CommonOptions {
  std::filesystem::path file;
};

struct BenchOptions {
  std::int64_t elements = std::int64_t{1} << 26;  // per rank
  std::vector<int> threads;                        // each value is one series
  int repeat = 5;                                  // the median is reported
  std::vector<std::string> initializers{"zeros", "ones", "uniform", "normal", "trunc_normal", "kaiming_uniform",
                                        "kaiming_normal", "xavier_uniform", "xavier_normal", "lecun_uniform",
                                        "lecun_normal"};
  std::vector<std::string> dtypes{"f32", "bf16"};
  std::uint64_t seed = 42;
};

struct ManifestOptions {
  ModelOptions model;
  std::optional<std::filesystem::path> output;  // stdout without
  bool force = false;
};

struct InspectOptions {
  std::filesystem::path target;       // a safetensors file, or a directory of rank files
  std::vector<std::string> tensors;   // only these (default: all)
  bool hist = false;
  int bins = 20;
  bool partial = false;               // a per-rank directory may lack rank files (e.g. one node's)
};

// Each returns an exit status; errors are thrown as shardinit::Error and mapped by main(). The
// manifest was loaded (and, under MPI, agreed on by every rank) by main().
int run_init(const InitOptions& options, const Launch& launch, const Manifest& manifest);
int run_verify(const VerifyOptions& options, const Launch& launch, const Manifest& manifest);
int run_bench(const BenchOptions& options, const Launch& launch);
int run_manifest(const ManifestOptions& options, const ModelManifest& model);
// `heartbeat` is called as the reading advances (under MPI: the other ranks' watchdog hears from rank 0).
int run_inspect(const InspectOptions& options, const std::function<void()>& heartbeat);

// What the ranks of a job must run alike, as text: the subcommand and every option that changes what
// it does or writes (not the manifest's path, which may differ from node to node, nor --threads,
// --quiet or --watchdog, which change neither the work nor the bytes).
[[nodiscard]] std::string command_claim(const InitOptions& options);
[[nodiscard]] std::string command_claim(const VerifyOptions& options);
[[nodiscard]] std::string command_claim(const BenchOptions& options);
[[nodiscard]] std::string command_claim(const InspectOptions& options);
[[nodiscard]] std::string command_claim(const ManifestOptions& options);

}  // namespace shardinit::cli
