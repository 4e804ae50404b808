// The shardinit command: `init` writes a manifest's checkpoint, `verify` checks one; under mpirun
// every rank computes only its own shards.

#include <mpi.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <exception>
#include <limits>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/launch.hpp"
#include "format/atomic_file.hpp"
#include "format/leftovers.hpp"
#include "mpi/agreement.hpp"
#include "mpi/core_share.hpp"
#include "mpi/job_agreement.hpp"
#include "mpi/wait.hpp"
#include "shardinit/error.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/mpi/mpi.hpp"
#include "shardinit/version.hpp"
#include "util/printable.hpp"

namespace {

using namespace shardinit::cli;

int exit_status_for(shardinit::ErrorKind kind) {
  using shardinit::ErrorKind;
  switch (kind) {
    case ErrorKind::invalid_argument:
    case ErrorKind::parse: return kInvalidInput;
    case ErrorKind::io: return kIoError;
    case ErrorKind::bad_file: return kMismatch;
    case ErrorKind::internal: return kInternalError;
  }
  return kInternalError;
}

// The one mapping from what ended a command to its exit status and message, alone or under MPI:
// shardinit errors by their kind, memory exhausted as an I/O error (3), anything else a bug (4).
struct Outcome {
  int status;
  const char* prefix;
  std::string message;
};
Outcome outcome_of(const std::exception_ptr& thrown) {
  try {
    std::rethrow_exception(thrown);
  } catch (const shardinit::Error& e) {
    return {exit_status_for(e.kind()), "error: ", e.what()};
  } catch (const std::bad_alloc&) {
    return {kIoError, "error: ", "out of memory"};
  } catch (const std::exception& e) {
    return {kInternalError, "internal error: ", e.what()};
  } catch (...) {
    return {kInternalError, "internal error: ", "unknown exception"};
  }
}

// MPI is initialized only under an MPI launcher, and finalized on every way out of main.
class MpiSession {
 public:
  explicit MpiSession(int& argc, char**& argv) {
    if (!started_by_mpi_launcher()) return;
    MPI_Init(&argc, &argv);
    active_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // Collective: here, where every rank is, before anything can make the ranks take different paths.
    core_share_ = shardinit::mpi::detail::node_core_share(MPI_COMM_WORLD);
  }
  ~MpiSession() {
    if (!active_) return;
    // MPI_Finalize blocks (and spins) until every rank is in it: meet first, sleeping and watched.
    shardinit::mpi::detail::rendezvous(MPI_COMM_WORLD, "finishing");
    MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  [[nodiscard]] bool active() const noexcept { return active_; }
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }
  [[nodiscard]] double core_share() const noexcept { return core_share_; }

  // An error only this rank saw: the others may be waiting in a collective call, so end the job.
  [[noreturn]] void abort_job(int status) const {
    shardinit::detail::remove_all_temporaries();
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
    std::_Exit(status);
  }

 private:
  bool active_ = false;
  int rank_ = 0;
  int size_ = 1;
  double core_share_ = 1;
};

// Every message is one line: whatever a name or a path holds is escaped (util/printable.hpp).
void print_error(const char* prefix, const std::string& message) {
  std::fprintf(stderr, "shardinit: %s%s\n", prefix, shardinit::detail::printable(message, 4000).c_str());
}

// What the ranks of a job must have alike (mpi/job_agreement.hpp): the program, the command, the manifest.
std::vector<shardinit::mpi::detail::Claim> job_claims(const std::string& command, const std::filesystem::path* manifest_path,
                                                      const std::optional<shardinit::Manifest>& manifest) {
  using shardinit::mpi::detail::Claim;
  const std::string version = "shardinit " + std::string(shardinit::kLibraryVersion) + " (stream format " +
                              std::string(shardinit::kStreamFormatVersion) + ")";
  std::vector<Claim> claims{{"the shardinit version", version, version}, {"the command", command, command}};
  if (manifest) {
    const std::string digest = shardinit::manifest_run_digest(*manifest);
    const std::size_t n = manifest->tensors.size();
    claims.push_back({"the manifest",
                      manifest_path->string() + ": seed " + std::to_string(manifest->seed) + ", " + std::to_string(n) +
                          (n == 1 ? " tensor, " : " tensors, ") + digest.substr(0, 7 + 16),
                      digest});
  } else {
    claims.push_back({"the manifest", "no manifest", ""});
  }
  return claims;
}

}  // namespace


int main(int argc, char** argv) {
  // With a file-size limit (ulimit -f), exceeding it must be a write error we report, not a kill.
  std::signal(SIGXFSZ, SIG_IGN);
  // Whatever ends this process, SIGKILL included, a guardian removes the temporary files it leaves:
  // forked now, while the process is small and alone, before MPI starts threads (io/leftovers.hpp).
  shardinit::detail::start_leftover_guardian();
  MpiSession mpi(argc, argv);

  CLI::App app{
      "shardinit: initialize model parameters shard by shard. Every value is a pure function of (seed, tensor "
      "stream, global element index), drawn from Philox4x32-10, so any piece of a tensor is bit-for-bit the same "
      "piece of the whole, however it is split.\n\n"
      "Under mpirun each rank computes only its own shards (layouts: docs/layouts.md) and the ranks write ONE "
      "file together with MPI-IO, byte-identical to a single process's. With --rank R --world W (or the RANK / "
      "WORLD_SIZE of torchrun, SLURM_PROCID / SLURM_NTASKS of SLURM) and no MPI launcher, the process computes "
      "just that rank's shards, into its own file under --per-rank DIR.\n\n"
      "Exit status: 0 success, 1 verify mismatch, 2 bad command line or manifest, 3 I/O error, 4 internal error. "
      "Manifest format: docs/manifest.md.",
      "shardinit"};
  app.set_version_flag("--version", std::string(shardinit::kLibraryVersion) + " (stream format " +
                                        std::string(shardinit::kStreamFormatVersion) + ")");
  app.require_subcommand(1);
  std::optional<int> rank, world;
  const auto add_threads_option = [](CLI::App* command, int& threads) {
    command->add_option("-t,--threads", threads,
                        "Fill threads, besides the one writing (default: one per core this process may use: its CPU "
                        "affinity, shared with the other ranks of its node that may run there; under a core of its "
                        "own, it fills and writes in turn). Never changes a value")
        ->check(CLI::Range(1, kMaxThreads));
  };
  double watchdog = shardinit::mpi::detail::kDefaultWatchdogSeconds;
  const auto add_watchdog_option = [&](CLI::App* command) {
    command->add_option("--watchdog", watchdog,
                        "Under MPI: end the job with an error when a rank answers nothing for this many seconds "
                        "(stopped, stuck in the filesystem, host down); 0: never. A slow rank still answers "
                        "between pieces of at most 64 MiB, so this bounds silence, not the job (default 300)")
        ->check(CLI::Range(0.0, 1e7));
  };
  const auto add_rank_options = [&](CLI::App* command) {
    command->add_option("--rank", rank, "This process's rank, when no MPI launcher started it")
        ->check(CLI::Range(0, std::numeric_limits<int>::max() - 1));
    command->add_option("--world", world, "The number of ranks, with --rank")->check(CLI::Range(1, std::numeric_limits<int>::max()));
  };

  // --hf CONFIG and the choices of the manifest made from it (init, verify, manifest).
  const auto add_model_options = [](CLI::App* command, ModelOptions& model) {
    return command->add_option("--hf", model.config,
                               "A Hugging Face config.json instead of a manifest: the model's state dict, initialized by "
                               "--init (docs/models.md). Supported: LlamaForCausalLM, MistralForCausalLM, "
                               "Qwen2ForCausalLM, MixtralForCausalLM, GPT2LMHeadModel");
  };
  const auto add_model_choices = [](CLI::App* command, ModelOptions& model) {
    command->add_option("--init", model.init,
                        "With --hf: hf (the architecture's own _init_weights: normal(0, initializer_range), zero biases, "
                        "unit norms) or colossal (Colossal-AI's layer defaults)")
        ->capture_default_str();
    command->add_option("--tp", model.tp, "With --hf: the tensor-parallel size (Colossal-AI 1D layouts); never changes a value")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    command->add_option("--tp-mode", model.tp_mode, "With --hf: the tensor-parallel mode (1d)")->capture_default_str();
    command->add_option("--pp", model.pp, "With --hf: pipeline stages (layers split uniformly); never changes a value")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    command->add_option("--dp", model.dp, "With --hf: the data-parallel size (default: what the world leaves)")->check(CLI::Range(1, 1 << 30));
    command->add_option("--ep", model.ep,
                        "With --hf: the expert-parallel size of a mixture of experts (Mixtral): it divides the data-parallel "
                        "ranks, and expert e of N lives on expert rank e / (N / EP); never changes a value")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    command->add_option("--dtype", model.dtype, "With --hf: f32, bf16, f16 or f64 (default: the config's torch_dtype, else f32)");
    command->add_option("--seed", model.seed, "With --hf: the manifest's seed")->capture_default_str();
  };

  ManifestOptions manifest_options;
  CLI::App* manifest_command = app.add_subcommand(
      "manifest", "Write the manifest of a Hugging Face model from its config.json: every tensor of its state dict with "
                  "the names, shapes and dtypes transformers gives it, its initializer, 1D tensor-parallel layout and "
                  "pipeline stage (docs/models.md). On standard output, or atomically to -o FILE.");
  add_model_options(manifest_command, manifest_options.model)->required();
  add_model_choices(manifest_command, manifest_options.model);
  manifest_command->add_option("-o,--output", manifest_options.output, "Write the manifest to FILE instead of standard output");
  manifest_command->add_flag("-f,--force", manifest_options.force, "Replace an existing FILE");

  InitOptions init_options;
  CLI::App* init = app.add_subcommand(
      "init", "Generate every tensor of MANIFEST and write them to one safetensors file (or, with --per-rank, each "
              "rank's shards to its own file). A file appears only once complete (written under a temporary name, "
              "then renamed); on any error nothing is left at OUT.");
  init->add_option("manifest", init_options.manifest, "Manifest JSON (seed and tensors); or --hf CONFIG");
  add_model_options(init, init_options.model);
  add_model_choices(init, init_options.model);
  auto* output = init->add_option("-o,--output", init_options.output, "Output safetensors file");
  auto* per_rank = init->add_option("--per-rank", init_options.per_rank_dir,
                                    "Write each rank's shards to DIR/rank-RRRRR-of-WWWWW.safetensors instead, with "
                                    "each tensor's global shape and box in __metadata__");
  output->excludes(per_rank);
  const auto add_format_options = [](CLI::App* command, CommonOptions& options, const char* what, const char* shard_default) {
    command->add_option("--format", options.format,
                        std::string("Output format: safetensors (one file, the default) or hf (a Hugging Face directory: "
                                    "model.safetensors, or model-00001-of-0000N.safetensors ... and "
                                    "model.safetensors.index.json, split as huggingface_hub splits)") + what);
    command->add_option("--max-shard-size", options.max_shard_size,
                        "With --format hf: the largest shard, as huggingface_hub reads it: 500MB = 5*10^8 bytes, 2GiB = 2*2^30"
                        "; a larger tensor gets a shard of its own" + std::string(shard_default));
  };
  add_format_options(init, init_options, "", " (default 5GB)");
  init->add_flag("-f,--force", init_options.force,
                 "Replace existing output (refused otherwise; a directory only if it holds nothing but such an output's files)");
  init->add_flag("-q,--quiet", init_options.quiet, "Print nothing on success");
  add_threads_option(init, init_options.threads);
  add_rank_options(init);
  add_watchdog_option(init);

  VerifyOptions verify_options;
  CLI::App* verify = app.add_subcommand(
      "verify", "Recompute MANIFEST and compare it with FILE (or the rank files in --per-rank DIR): header, metadata "
                "and every element. Exit 0 on a match; exit 1 naming the first mismatching tensor and element.");
  verify->add_option("manifest", verify_options.manifest, "Manifest JSON (with --hf CONFIG: none, only FILE)");
  add_model_options(verify, verify_options.model);
  add_model_choices(verify, verify_options.model);
  auto* file = verify->add_option("file", verify_options.file, "safetensors file (or Hugging Face directory) to check");
  auto* verify_per_rank = verify->add_option("--per-rank", verify_options.per_rank_dir, "Check the rank files in DIR");
  file->excludes(verify_per_rank);
  add_format_options(verify, verify_options, "; default: hf when FILE is a directory",
                     ". Without it a directory is read as its index splits it, whatever size wrote it; with it the "
                     "split must also be the one that size makes");
  verify->add_flag("-q,--quiet", verify_options.quiet, "Print nothing on a match");
  add_threads_option(verify, verify_options.threads);
  add_rank_options(verify);
  add_watchdog_option(verify);

  BenchOptions bench_options;
  CLI::App* bench = app.add_subcommand(
      "bench", "Measure each initializer's fill rate, in elements per second, against glibc memset on the same buffer "
               "in the same run: one JSON object per line per (initializer, dtype, threads). Under mpirun every rank "
               "fills its own buffer at once and the total is reported (weak scaling).");
  bench->add_option("--elements", bench_options.elements, "Elements per buffer (per rank)")->capture_default_str();
  bench->add_option("--threads", bench_options.threads, "Thread counts to measure, e.g. 1,2 (default: 1 and one per core)")
      ->delimiter(',')
      ->check(CLI::Range(1, kMaxThreads));
  bench->add_option("--repeat", bench_options.repeat, "Runs per measurement; the median is reported")->capture_default_str();
  bench->add_option("--initializers", bench_options.initializers, "Initializers to measure")->delimiter(',');
  bench->add_option("--dtypes", bench_options.dtypes, "dtypes to measure (f32, f64, bf16, f16)")->delimiter(',');
  add_watchdog_option(bench);

  InspectOptions inspect_options;
  CLI::App* inspect = app.add_subcommand(
      "inspect", "List the tensors of a safetensors FILE (or of the rank files in a --per-rank DIR, reassembled into "
                 "the global tensors): dtype, shape, the initializer and seed shardinit recorded, and the mean, std, "
                 "min and max of the values beside what the initializer's distribution predicts. --hist draws a text "
                 "histogram of each tensor's values with the expected counts.");
  inspect->add_option("target", inspect_options.target, "safetensors file, or directory of rank files")->required();
  inspect->add_option("-t,--tensor", inspect_options.tensors, "Only this tensor (repeatable)");
  inspect->add_flag("--hist", inspect_options.hist, "Draw a histogram of the values beside the expected counts");
  inspect->add_option("--bins", inspect_options.bins, "Histogram bins (1..200)")->capture_default_str();
  inspect->add_flag("--partial", inspect_options.partial,
                    "With a per-rank DIR: show what is there even if some rank files are missing (e.g. one node's "
                    "local directory); without it a missing rank file is an error");

  // 1. The command line. Under MPI nothing is printed or decided yet: every rank must first learn
  // whether all of them parsed it, and the same way (a usage error is then printed once).
  std::optional<shardinit::Error> error;
  std::exception_ptr help;  // --help or --version: printed by rank 0 once the ranks agree
  std::string help_kind;
  try {
    app.parse(argc, argv);
    // A manifest, or --hf CONFIG; with --hf, verify's one positional is the FILE.
    if (verify->parsed() && !verify_options.model.config.empty() && verify_options.file.empty()) {
      std::swap(verify_options.file, verify_options.manifest);
    }
    for (const CommonOptions* o : {static_cast<const CommonOptions*>(&init_options), static_cast<const CommonOptions*>(&verify_options)}) {
      if (!(o == &init_options ? init->parsed() : verify->parsed())) continue;
      if (o->manifest.empty() && o->model.config.empty()) throw CLI::RequiredError("MANIFEST or --hf CONFIG");
      if (!o->manifest.empty() && !o->model.config.empty()) {
        throw CLI::ValidationError("--hf", "a manifest (" + o->manifest.string() + ") and --hf CONFIG are two sources of tensors: give one");
      }
    }
    // The model choices mean something only with --hf.
    for (const auto& [command, model] : {std::pair{init, &init_options.model}, std::pair{verify, &verify_options.model}}) {
      if (!command->parsed() || !model->config.empty()) continue;
      for (const char* option : {"--init", "--tp", "--tp-mode", "--pp", "--dp", "--ep", "--dtype", "--seed"}) {
        if (command->count(option) > 0) throw CLI::ValidationError(option, "is an option of --hf CONFIG (a manifest says it itself)");
      }
    }
    if (init->parsed() && init_options.output.empty() && !init_options.per_rank_dir) {
      throw CLI::RequiredError("-o,--output or --per-rank");
    }
    if (verify->parsed() && verify_options.file.empty() && !verify_options.per_rank_dir) {
      throw CLI::RequiredError("FILE or --per-rank");
    }
    // NaN passes CLI::Range (no comparison with it is true) and would turn the watchdog off unseen.
    if (!std::isfinite(watchdog)) throw CLI::ValidationError("--watchdog", "not a number: " + std::to_string(watchdog));
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      help = std::current_exception();
      help_kind = dynamic_cast<const CLI::CallForVersion*>(&e) != nullptr ? "--version" : "--help";
    } else {
      error = shardinit::Error(shardinit::ErrorKind::invalid_argument, std::string(e.what()) + " (see shardinit --help)");
    }
  }
  if (bench->parsed() && bench_options.threads.empty()) {
    // 1 and one per core; under MPI just 1 (one per rank), so that nodes with other core counts still
    // run the same series (the thread counts are part of what the ranks agree on).
    bench_options.threads.push_back(1);
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    if (cores > 1 && !mpi.active()) bench_options.threads.push_back(cores);
  }
  std::string command = help ? help_kind : std::string();
  if (init->parsed()) command = command_claim(init_options);
  if (verify->parsed()) command = command_claim(verify_options);
  if (bench->parsed()) command = command_claim(bench_options);
  if (inspect->parsed()) command = command_claim(inspect_options);
  if (manifest_command->parsed()) command = command_claim(manifest_options);

  Launch launch;
  std::optional<shardinit::Manifest> manifest;
  // The model options of the command, when it has them, and where its manifest comes from.
  const ModelOptions* model_options = init->parsed()               ? &init_options.model
                                      : verify->parsed()           ? &verify_options.model
                                      : manifest_command->parsed() ? &manifest_options.model
                                                                   : nullptr;
  const bool from_model = model_options != nullptr && !model_options->config.empty();
  const std::filesystem::path* manifest_path = from_model         ? &model_options->config
                                               : init->parsed()   ? &init_options.manifest
                                               : verify->parsed() ? &verify_options.manifest
                                                                  : nullptr;
  std::optional<ModelManifest> model;
  try {
    // 2. How this process was started, and the manifest, for the commands that read one.
    if (!error && !help) {
      try {
        if (mpi.active()) {
          if (rank || world) {
            throw shardinit::Error(shardinit::ErrorKind::invalid_argument, "--rank and --world are for runs without an MPI launcher");
          }
          launch = Launch{Launch::Kind::mpi, mpi.rank(), mpi.size(), mpi.core_share()};
        } else {
          launch = one_rank_launch(rank, world);
        }
        if (init->parsed()) resolve_output(init_options, init_options.output, false);
        if (verify->parsed()) resolve_output(verify_options, verify_options.file, true);
        if (from_model) {
          model = make_model_manifest(*model_options);
          manifest = model->manifest;
          // A --hf directory holds the config and the manifest beside the weights (verify checks them).
          for (CommonOptions* options : {static_cast<CommonOptions*>(&init_options), static_cast<CommonOptions*>(&verify_options)}) {
            if (options->request.format == shardinit::OutputFormat::hf) options->request.companions = model_companions(*model);
          }
        } else if (manifest_path != nullptr) {
          manifest = shardinit::load_manifest(*manifest_path);
        }
      } catch (const shardinit::Error& e) {
        error = e;
      } catch (const std::bad_alloc&) {
        error = shardinit::Error(shardinit::ErrorKind::io, "out of memory");
      }
    }
    // 3. Under MPI the ranks agree on all of it before any other collective step: the same program,
    // command and manifest everywhere, or one error for all.
    if (mpi.active()) {
      shardinit::mpi::detail::set_watchdog_seconds(watchdog);
      shardinit::mpi::detail::agree_on_job(MPI_COMM_WORLD, error, job_claims(command, manifest_path, manifest));
    } else if (error) {
      throw *error;
    }
    if (help) {
      if (mpi.rank() == 0) {
        try {
          std::rethrow_exception(help);
        } catch (const CLI::ParseError& e) {
          app.exit(e);
        }
      }
      return kSuccess;
    }
    if (init->parsed()) return run_init(init_options, launch, *manifest);
    if (verify->parsed()) return run_verify(verify_options, launch, *manifest);
    if (bench->parsed()) return run_bench(bench_options, launch);
    if (manifest_command->parsed()) {
      // Rank 0 alone writes it; under MPI its outcome is agreed, as inspect's.
      if (!mpi.active()) return run_manifest(manifest_options, *model);
      int status = kSuccess;
      shardinit::mpi::detail::run_agreed(MPI_COMM_WORLD, "writing the manifest (rank 0)", [&] {
        if (mpi.rank() == 0) status = run_manifest(manifest_options, *model);
      });
      return status;
    }
    // inspect reads on rank 0 alone; under MPI its outcome is agreed, so that an error is printed once
    // and ends every rank alike.
    if (!mpi.active()) return run_inspect(inspect_options, {});
    int status = kSuccess;
    shardinit::mpi::detail::run_agreed(MPI_COMM_WORLD, "inspecting (rank 0)", [&] {
      if (mpi.rank() == 0) status = run_inspect(inspect_options, [] { shardinit::mpi::detail::keep_alive(MPI_COMM_WORLD); });
    });
    return status;
  } catch (const shardinit::mpi::AgreedError& e) {
    // Every rank holds this error and is past every collective call: one of them says it.
    if (mpi.rank() == 0) print_error("error: ", e.what());
    return exit_status_for(e.kind());
  } catch (...) {
    const Outcome outcome = outcome_of(std::current_exception());
    if (!mpi.active()) {
      print_error(outcome.prefix, outcome.message);
      return outcome.status;
    }
    // This rank's alone: the others may be inside a collective call, so the job must end.
    print_error(outcome.prefix, outcome.message + " (rank " + std::to_string(mpi.rank()) + ")");
    mpi.abort_job(outcome.status);
  }
}
