// The command a rank runs, as the text the ranks of one job compare (cli/commands.hpp).

#include <string>

#include "cli/commands.hpp"

namespace shardinit::cli {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

std::string target(const std::optional<std::filesystem::path>& per_rank, const std::filesystem::path& file) {
  return per_rank ? "--per-rank " + per_rank->string() : file.string();
}

}  // namespace

// The output options as given (the resolved request is agreed on by the library, with the files).
static std::string output_options(const CommonOptions& o) {
  return (o.format.empty() ? "" : " --format " + o.format) + (o.max_shard_size.empty() ? "" : " --max-shard-size " + o.max_shard_size);
}

std::string command_claim(const InitOptions& o) {
  return "init " + (o.per_rank_dir ? target(o.per_rank_dir, {}) : "-o " + o.output.string()) + output_options(o) +
         (o.force ? " --force" : "");
}

std::string command_claim(const VerifyOptions& o) { return "verify " + target(o.per_rank_dir, o.file) + output_options(o); }

std::string command_claim(const BenchOptions& o) {
  std::vector<std::string> threads;
  for (const int t : o.threads) threads.push_back(std::to_string(t));
  return "bench --elements " + std::to_string(o.elements) + " --threads " + join(threads) + " --repeat " +
         std::to_string(o.repeat) + " --initializers " + join(o.initializers) + " --dtypes " + join(o.dtypes);
}

std::string command_claim(const InspectOptions& o) {
  std::string text = "inspect " + o.target.string();
  for (const auto& t : o.tensors) text += " --tensor " + t;
  if (o.hist) text += " --hist --bins " + std::to_string(o.bins);
  if (o.partial) text += " --partial";
  return text;
}

}  // namespace shardinit::cli
