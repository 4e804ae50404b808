// The shardinit command: `init` writes a manifest's checkpoint, `verify` checks one.

#include <csignal>
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "shardinit/error.hpp"
#include "shardinit/version.hpp"

namespace {

int exit_status_for(shardinit::ErrorKind kind) {
  using shardinit::ErrorKind;
  switch (kind) {
    case ErrorKind::invalid_argument:
    case ErrorKind::parse: return shardinit::cli::kInvalidInput;
    case ErrorKind::io: return shardinit::cli::kIoError;
    case ErrorKind::bad_file: return shardinit::cli::kMismatch;
  }
  return shardinit::cli::kInternalError;
}

}  // namespace

int main(int argc, char** argv) {
  // With a file-size limit (ulimit -f), exceeding it must be a write error we report, not a kill.
  std::signal(SIGXFSZ, SIG_IGN);

  using namespace shardinit::cli;
  CLI::App app{
      "shardinit: initialize model parameters shard by shard. Every value is a pure function of (seed, tensor "
      "stream, global element index), drawn from Philox4x32-10, so any piece of a tensor is bit-for-bit the same "
      "piece of the whole, however it is split.\n\nExit status: 0 success, 1 verify mismatch, 2 bad command line or "
      "manifest, 3 I/O error, 4 internal error. Manifest format: docs/manifest.md.",
      "shardinit"};
  app.set_version_flag("--version", std::string(shardinit::kLibraryVersion) + " (stream format " +
                                        std::string(shardinit::kStreamFormatVersion) + ")");
  app.require_subcommand(1);

  InitOptions init_options;
  CLI::App* init = app.add_subcommand(
      "init", "Generate every tensor of MANIFEST and write them to one safetensors file. The file appears only once "
              "complete (written under a temporary name, then renamed); on any error nothing is left at OUT.");
  init->add_option("manifest", init_options.manifest, "Manifest JSON (seed and tensors)")->required();
  init->add_option("-o,--output", init_options.output, "Output safetensors file")->required();
  init->add_flag("-f,--force", init_options.force, "Replace OUT if it exists (refused otherwise)");
  init->add_flag("-q,--quiet", init_options.quiet, "Print nothing on success");

  VerifyOptions verify_options;
  CLI::App* verify = app.add_subcommand(
      "verify", "Recompute MANIFEST and compare it with FILE: header, metadata and every element. Exit 0 on a match; "
                "exit 1 naming the first mismatching tensor and element otherwise.");
  verify->add_option("manifest", verify_options.manifest, "Manifest JSON")->required();
  verify->add_option("file", verify_options.file, "safetensors file to check")->required();
  verify->add_flag("-q,--quiet", verify_options.quiet, "Print nothing on a match");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? kSuccess : kInvalidInput;
  }

  try {
    if (init->parsed()) return run_init(init_options);
    return run_verify(verify_options);
  } catch (const shardinit::Error& e) {
    std::fprintf(stderr, "shardinit: error: %s\n", e.what());
    return exit_status_for(e.kind());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "shardinit: error: out of memory\n");
    return kIoError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardinit: internal error: %s\n", e.what());
    return kInternalError;
  }
}
