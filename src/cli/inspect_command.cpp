// `shardinit inspect FILE | DIR`: what a safetensors file (or a directory of per-rank files,
// reassembled into the global tensors) holds: each tensor's dtype and shape, the initializer and
// seed shardinit recorded for it, and the mean, standard deviation, minimum and maximum of its
// values beside what the initializer's distribution predicts; --hist adds a text histogram.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/histogram.hpp"
#include "checkpoint/rank_set.hpp"
#include "distributions/half_precision.hpp"
#include "shardinit/error.hpp"
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/checkpoint/rank_checkpoint.hpp"
#include "format/regular_file.hpp"
#include "shardinit/format/hf_sharding.hpp"
#include "shardinit/format/safetensors.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "util/format_number.hpp"
#include "util/printable.hpp"
#include "util/strict_json.hpp"

namespace shardinit::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using detail::GlobalTensor;
using detail::StoredPiece;

// What shardinit recorded about the tensor, when it did.
struct Recorded {
  std::string init;  // "kaiming_uniform(a=2.236, mode=fan_in, nonlinearity=leaky_relu), fan_in 768"
  std::optional<Distribution> distribution;
};

struct Moments {
  std::int64_t count = 0, nans = 0;
  // In long double, whose range exceeds binary64's: deviations of values near +-1.7e308 stay finite.
  long double mean = 0, m2 = 0;
  double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
};

// The one file, whole, as a set of global tensors of one piece each.
std::vector<GlobalTensor> whole_file_tensors(const SafetensorsReader& file) {
  std::vector<GlobalTensor> tensors;
  for (const SafetensorsTensor& t : file.tensors()) {
    GlobalTensor g{t.name, t.dtype, t.shape, {}, {}, element_count(t.shape)};
    if (g.stored > 0) g.pieces.push_back(StoredPiece{&file, &t, Box::whole(t.shape), 0, g.stored, false});
    tensors.push_back(std::move(g));
  }
  return tensors;
}

std::string compact_init(const json& init) {
  std::string text = init.contains("fn") && init["fn"].is_string() ? detail::printable(init["fn"].get<std::string>(), 40) : "?";
  std::string parameters;
  for (const auto& [key, value] : init.items()) {
    if (key == "fn") continue;
    parameters += (parameters.empty() ? "" : ", ") + detail::printable(key, 40) + "=" +
                  (value.is_string() ? detail::printable(value.get<std::string>(), 60)
                   : value.is_number() ? detail::format_double(value.get<double>())
                                       : detail::brief(value));
  }
  return parameters.empty() ? text : text + "(" + parameters + ")";
}

// The initializer, fans and distribution recorded in the file's canonical spec, by tensor name.
std::map<std::string, Recorded> recorded_specs(const SafetensorsMetadata& metadata) {
  std::map<std::string, Recorded> recorded;
  const auto spec_text = metadata.find(kMetaSpec);
  if (spec_text == metadata.end()) return recorded;
  // Untrusted text: bounded depth, like every JSON shardinit reads; unreadable means not recorded.
  json spec;
  try {
    spec = detail::parse_strict_json(spec_text->second, "recorded spec").document;
  } catch (const Error&) {
    return recorded;
  }
  if (!spec.is_object() || !spec.contains("tensors") || !spec["tensors"].is_array()) return recorded;
  for (const json& t : spec["tensors"]) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("init")) continue;
    Recorded r;
    r.init = compact_init(t["init"]);
    for (const char* fan : {"fan_in", "fan_out"}) {
      if (t.contains(fan)) r.init += std::string(", ") + fan + " " + detail::brief(t[fan]);
    }
    // The entry is a manifest entry plus the derived distribution: parse it back to get that.
    json entry = t;
    entry.erase("distribution");
    try {
      const Manifest m = parse_manifest(json{{"seed", 0}, {"tensors", json::array({entry})}}.dump(), "recorded spec");
      r.distribution = m.tensors.at(0).distribution;
    } catch (const Error&) {
      // Not a spec this version understands: show the initializer text alone.
    }
    recorded.emplace(t["name"].get<std::string>(), std::move(r));
  }
  return recorded;
}

// Calls visit(value) for every stored value of `g` (each distinct box once), in chunks.
template <class Visit>
void for_each_value(const GlobalTensor& g, const std::function<void()>& heartbeat, const Visit& visit) {
  constexpr std::size_t kChunkElements = std::size_t{1} << 20;
  const std::size_t size = dtype_size(g.dtype);
  std::vector<std::byte> buffer(kChunkElements * size);
  for (const StoredPiece& p : g.pieces) {
    const std::uint64_t total = (p.entry->end - p.entry->begin) / size;
    for (std::uint64_t first = 0; first < total; first += kChunkElements) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunkElements, total - first));
      p.file->read(p.file->data_start() + p.entry->begin + first * size, std::span(buffer.data(), n * size));
      if (heartbeat) heartbeat();
      for (std::size_t i = 0; i < n; ++i) {
        const std::byte* at = buffer.data() + i * size;
        double v = 0;
        switch (g.dtype) {
          case DType::f32: { float f; std::memcpy(&f, at, 4); v = f; break; }
          case DType::f64: std::memcpy(&v, at, 8); break;
          case DType::bf16: { std::uint16_t h; std::memcpy(&h, at, 2); v = detail::f32_from_bf16(h); break; }
          case DType::f16: { std::uint16_t h; std::memcpy(&h, at, 2); v = detail::f32_from_f16(h); break; }
        }
        visit(v);
      }
    }
  }
}

Moments moments_of(const GlobalTensor& g, const std::function<void()>& heartbeat) {
  Moments m;
  for_each_value(g, heartbeat, [&](double v) {
    if (std::isnan(v)) {
      ++m.nans;
      return;
    }
    ++m.count;  // Welford: stable for any count
    const long double delta = v - m.mean;
    m.mean += delta / static_cast<long double>(m.count);
    m.m2 += delta * (v - m.mean);
    m.min = std::min(m.min, v);
    m.max = std::max(m.max, v);
  });
  return m;
}

std::string g4(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", x);
  return text;
}

// A Hugging Face directory (model.safetensors, or shards and model.safetensors.index.json): the
// tensors of every shard, each whole; the metadata that describes the run (the single file's, or the
// index's: the shards record only who made them). Each index entry must be in the shard it names,
// and each shard's tensors in the index.
struct HfDirectory {
  std::vector<std::unique_ptr<SafetensorsReader>> files;
  std::vector<GlobalTensor> tensors;
  SafetensorsMetadata metadata;
  std::size_t shards = 0;
};

bool is_hf_directory(const fs::path& directory) {
  std::error_code ec;
  return fs::exists(directory / kHfIndexFile, ec) || fs::exists(directory / kHfSingleFile, ec);
}

HfDirectory read_hf_directory(const fs::path& directory) {
  HfDirectory hf;
  const fs::path index_path = directory / kHfIndexFile;
  std::error_code ec;
  if (!fs::exists(index_path, ec)) {
    hf.files.push_back(std::make_unique<SafetensorsReader>(directory / kHfSingleFile));
    hf.tensors = whole_file_tensors(*hf.files.back());
    hf.metadata = hf.files.back()->metadata();
    hf.shards = 1;
    return hf;
  }
  const std::string where = detail::printable(index_path.string());
  const HfIndex index = parse_hf_index(detail::RegularFile(index_path, "index file").read_all(kMaxSafetensorsHeader), where);
  for (const auto& [key, value] : index.metadata) hf.metadata[key] = value;
  std::map<std::string, std::string> file_of(index.weight_map.begin(), index.weight_map.end());
  std::vector<std::string> names;
  for (const auto& [tensor, file] : index.weight_map) {
    if (std::find(names.begin(), names.end(), file) == names.end()) names.push_back(file);
  }
  for (const std::string& name : names) {
    if (name.find('/') != std::string::npos || name.starts_with(".")) {
      throw Error(ErrorKind::bad_file, where + ": names a file outside the directory: " + detail::quote(name));
    }
    hf.files.push_back(std::make_unique<SafetensorsReader>(directory / name));
    for (GlobalTensor& g : whole_file_tensors(*hf.files.back())) {
      const auto it = file_of.find(g.name);
      if (it == file_of.end() || it->second != name) {
        throw Error(ErrorKind::bad_file, where + ": " + detail::quote(name) + " holds tensor " + detail::quote(g.name) +
                                             (it == file_of.end() ? ", which the index does not list" : ", which the index puts in " + detail::quote(it->second)));
      }
      file_of.erase(it);
      hf.tensors.push_back(std::move(g));
    }
  }
  if (!file_of.empty()) {
    throw Error(ErrorKind::bad_file, where + ": tensor " + detail::quote(file_of.begin()->first) + " is not in " +
                                         detail::quote(file_of.begin()->second) + ", where the index puts it");
  }
  hf.shards = names.size();
  return hf;
}

}  // namespace

int run_inspect(const InspectOptions& options, const std::function<void()>& heartbeat) {
  if (options.bins < 1 || options.bins > 200) {
    throw Error(ErrorKind::invalid_argument, "--bins " + std::to_string(options.bins) + " must be between 1 and 200");
  }
  const std::string target = detail::printable(options.target.string());
  std::error_code ec;
  const bool directory = fs::is_directory(options.target, ec);
  const bool hf_directory = directory && is_hf_directory(options.target);
  const bool per_rank = directory && !hf_directory;
  std::optional<SafetensorsReader> file;
  detail::RankSet set;
  HfDirectory hf;
  std::vector<GlobalTensor> tensors;
  if (hf_directory) {
    hf = read_hf_directory(options.target);
    tensors = hf.tensors;
  } else if (per_rank) {
    set = detail::read_rank_set(options.target);
    detail::check_coverage(set);
    detail::check_replicas(set, heartbeat);
    tensors = set.tensors;
    if (set.missing_count > 0 && !options.partial) {
      throw Error(ErrorKind::bad_file, target + ": the set of rank files is incomplete: missing " + detail::describe_missing(set) +
                                           " (--partial shows what is there)");
    }
  } else {
    file.emplace(options.target);
    tensors = whole_file_tensors(*file);
  }
  for (const std::string& wanted : options.tensors) {
    if (std::none_of(tensors.begin(), tensors.end(), [&](const GlobalTensor& t) { return t.name == wanted; })) {
      std::string names;
      for (const auto& t : tensors) names += (names.empty() ? "" : ", ") + detail::printable(t.name, 60);
      throw Error(ErrorKind::invalid_argument, "--tensor " + detail::printable(wanted) + ": no such tensor in " + target +
                                                   " (it has: " + detail::printable(names, 1000) + ")");
    }
  }
  const SafetensorsMetadata& metadata = hf_directory ? hf.metadata : per_rank ? set.files.front()->metadata() : file->metadata();
  const auto recorded = recorded_specs(metadata);
  const auto meta = [&](const char* key) {
    const auto it = metadata.find(key);
    return it == metadata.end() ? std::string("(not recorded)") : detail::printable(it->second, 40);
  };
  std::printf("%s: %s, %zu tensors, seed %s, stream format %s\n", target.c_str(),
              hf_directory ? ("Hugging Face directory of " + std::to_string(hf.shards) + (hf.shards == 1 ? " file" : " shards")).c_str()
              : per_rank   ? (std::to_string(set.files.size()) + " of " + std::to_string(set.world) + " rank files, reassembled").c_str()
                           : "safetensors file",
              tensors.size(), meta(kMetaSeed).c_str(), meta(kMetaStreamFormat).c_str());
  if (set.missing_count > 0) std::printf("    MISSING %s\n", detail::describe_missing(set).c_str());

  std::sort(tensors.begin(), tensors.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  for (const GlobalTensor& g : tensors) {
    if (!options.tensors.empty() && std::find(options.tensors.begin(), options.tensors.end(), g.name) == options.tensors.end()) {
      continue;
    }
    const Index stored = g.stored;
    const Index total = element_count(g.shape);
    std::printf("%s  %s %s%s\n", detail::printable(g.name).c_str(), std::string(dtype_name(g.dtype)).c_str(), shape_to_string(g.shape).c_str(),
                stored == total ? "" : ("  INCOMPLETE: the files hold " + std::to_string(stored) + " of its " +
                                        std::to_string(total) + " elements").c_str());
    const auto r = recorded.find(g.name);
    std::optional<Distribution> law;
    if (r != recorded.end()) {
      law = r->second.distribution;
      std::printf("    init    %s%s\n", r->second.init.c_str(), law ? ("  ->  " + describe(*law)).c_str() : "");
    } else {
      std::printf("    init    (not recorded: not written by shardinit)\n");
    }
    const Moments m = moments_of(g, heartbeat);
    const double std_dev = m.count > 1 ? static_cast<double>(std::sqrt(m.m2 / static_cast<long double>(m.count))) : 0.0;
    std::string expected_mean, expected_std;
    if (law) {
      const auto [mu, sigma] = distribution_moments(*law);
      expected_mean = " (expected " + g4(mu) + ")";
      expected_std = " (expected " + g4(sigma) + ")";
    }
    if (m.count == 0) {
      std::printf("    values  none%s\n", m.nans ? (" (" + std::to_string(m.nans) + " NaN)").c_str() : "");
      continue;
    }
    std::printf("    values  mean %s%s  std %s%s  min %s  max %s  (%lld elements%s)\n", g4(static_cast<double>(m.mean)).c_str(),
                expected_mean.c_str(), g4(std_dev).c_str(), expected_std.c_str(), g4(m.min).c_str(), g4(m.max).c_str(),
                static_cast<long long>(m.count), m.nans ? (", " + std::to_string(m.nans) + " NaN").c_str() : "");
    if (options.hist) {
      std::vector<std::int64_t> counts(static_cast<std::size_t>(m.min < m.max ? options.bins : 1), 0);
      const long double lo = m.min, width = static_cast<long double>(m.max) - lo;  // finite for finite values
      const auto bins = static_cast<long double>(counts.size());
      for_each_value(g, heartbeat, [&](double v) {
        if (std::isnan(v)) return;
        long double at = width > 0 ? (v - lo) / width * bins : 0;
        if (!(at >= 0)) at = 0;  // NaN (infinite values) or below: the first bin
        ++counts[at >= bins ? counts.size() - 1 : static_cast<std::size_t>(at)];
      });
      print_histogram(counts, m.min, m.max, m.count, law ? *law : Distribution{Constant{static_cast<double>(m.mean)}});
    }
  }
  return kSuccess;
}

}  // namespace shardinit::cli
