// Which output a command writes or checks: --per-rank, --format, --max-shard-size (cli/commands.hpp).

#include <system_error>

#include "cli/commands.hpp"
#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit::cli {

void resolve_output(CommonOptions& options, const std::filesystem::path& target, bool verifying) {
  OutputRequest request;
  const bool from_model = !options.model.config.empty();
  if (from_model && !options.per_rank_dir && !options.format.empty() && options.format != "hf") {
    throw Error(ErrorKind::invalid_argument, "--hf makes a Hugging Face directory (--format hf), not --format " + detail::quote(options.format));
  }
  if (options.per_rank_dir) {
    if (!options.format.empty() && options.format != "per-rank") {
      throw Error(ErrorKind::invalid_argument, "--per-rank writes per-rank files, not --format " + detail::quote(options.format));
    }
    request.format = OutputFormat::per_rank;
  } else if (options.format == "hf" || from_model) {
    request.format = OutputFormat::hf;
  } else if (options.format == "safetensors") {
    request.format = OutputFormat::safetensors;
  } else if (options.format.empty()) {
    std::error_code ec;
    // verify reads what is there: a directory (or what --max-shard-size names) is a Hugging Face checkpoint.
    request.format = verifying && (std::filesystem::is_directory(target, ec) || !options.max_shard_size.empty()) ? OutputFormat::hf
                                                                                                          : OutputFormat::safetensors;
  } else {
    throw Error(ErrorKind::invalid_argument,
                "--format " + detail::quote(options.format) + " is not an output format (safetensors: one file; hf: a Hugging Face directory)");
  }
  if (!options.max_shard_size.empty()) {
    if (request.format != OutputFormat::hf) throw Error(ErrorKind::invalid_argument, "--max-shard-size is for --format hf");
    request.max_shard_size = parse_shard_size(options.max_shard_size);
  }
  // verify reads a directory as it is split, whatever --max-shard-size init was given; with
  // --max-shard-size it also checks that the split is the one that size makes.
  request.split_as_found = verifying && request.format == OutputFormat::hf && options.max_shard_size.empty();
  options.request = request;
}

}  // namespace shardinit::cli
