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

// The model options (not the config's path: the config itself is compared, through the manifest made from it).
static std::string model_options(const ModelOptions& m) {
  if (m.config.empty()) return "";
  return " --hf --init " + m.init + " --tp " + std::to_string(m.tp) + " --tp-mode " + m.tp_mode + " --pp " +
         std::to_string(m.pp) + (m.dp ? " --dp " + std::to_string(*m.dp) : "") + " --ep " + std::to_string(m.ep) + (m.dtype.empty() ? "" : " --dtype " + m.dtype) +
         " --seed " + std::to_string(m.seed);
}

// The output options as given (the resolved request is agreed on by the library, with the files).
static std::string output_options(const CommonOptions& o) {
  return (o.format.empty() ? "" : " --format " + o.format) + (o.max_shard_size.empty() ? "" : " --max-shard-size " + o.max_shard_size) +
         model_options(o.model);
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

std::string command_claim(const ManifestOptions& o) {
  return "manifest" + model_options(o.model) + (o.output ? " -o " + o.output->string() : "") + (o.force ? " --force" : "");
}

}  // namespace shardinit::cli
