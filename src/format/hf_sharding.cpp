#include "shardinit/format/hf_sharding.hpp"

#include <cctype>
#include <cstdio>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

#include "shardinit/error.hpp"
#include "util/checked.hpp"
#include "util/printable.hpp"

namespace shardinit {

std::uint64_t parse_shard_size(std::string_view given) {
  const std::string shown = detail::quote(std::string(given));
  const auto refuse = [&](const std::string& why) -> Error {
    return Error(ErrorKind::invalid_argument,
                 "max shard size " + shown + " " + why +
                     " (a number and a unit: KB, MB, GB, TB are powers of 10, KiB, MiB, GiB, TiB powers of 2, e.g. 5GB or 2GiB)");
  };
  std::string_view text = given;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  std::size_t digits_end = 0;
  while (digits_end < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits_end])) || text[digits_end] == '.')) ++digits_end;
  const std::string_view number = text.substr(0, digits_end);
  std::string unit(text.substr(digits_end));
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.erase(unit.begin());
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  struct Unit {
    const char* name;
    unsigned base;
    int power;
  };
  static constexpr Unit kUnits[] = {{"", 10, 0},   {"B", 10, 0},   {"KB", 10, 3},  {"MB", 10, 6},  {"GB", 10, 9},
                                    {"TB", 10, 12}, {"KIB", 2, 10}, {"MIB", 2, 20}, {"GIB", 2, 30}, {"TIB", 2, 40}};
  const Unit* found = nullptr;
  for (const Unit& u : kUnits) {
    if (unit == u.name) found = &u;
  }
  if (found == nullptr) throw refuse("has an unknown unit");
  const std::size_t point = number.find('.');
  const std::string_view whole = number.substr(0, point);
  const std::string_view fraction = point == std::string_view::npos ? std::string_view() : number.substr(point + 1);
  if (whole.empty() && fraction.empty()) throw refuse("has no number");
  if (fraction.find('.') != std::string_view::npos) throw refuse("is not a number");
  // value = (whole . fraction) * base^power, exactly, truncated: integers in 128 bits.
  detail::uint128 multiplier = 1;
  for (int i = 0; i < found->power; ++i) multiplier *= found->base;
  constexpr detail::uint128 kLimit = static_cast<detail::uint128>(std::numeric_limits<std::int64_t>::max());
  detail::uint128 value = 0;
  for (char c : whole) {
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > kLimit) throw refuse("is more than 2^63 - 1 bytes");
  }
  value *= multiplier;
  if (value > kLimit) throw refuse("is more than 2^63 - 1 bytes");
  detail::uint128 scale = 1, part = 0;
  for (char c : fraction.substr(0, 30)) {
    part = part * 10 + static_cast<unsigned>(c - '0');
    scale *= 10;
    if (scale > (static_cast<detail::uint128>(1) << 100)) break;
  }
  value += part * multiplier / scale;
  if (value > kLimit) throw refuse("is more than 2^63 - 1 bytes");
  if (value == 0) throw refuse("is zero bytes");
  return static_cast<std::uint64_t>(value);
}

HfSplit split_into_shards(const std::vector<std::uint64_t>& sizes, std::uint64_t max_shard_size) {
  HfSplit shards;
  std::vector<std::size_t> current;
  std::uint64_t current_size = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] > max_shard_size) {  // its own shard, now; the current one stays open
      shards.push_back({i});
      continue;
    }
    if (current_size + sizes[i] > max_shard_size) {  // sizes[i] <= max: no overflow past 2^64
      shards.push_back(std::move(current));
      current.clear();
      current_size = 0;
    }
    current.push_back(i);
    current_size += sizes[i];
  }
  if (!current.empty()) shards.push_back(std::move(current));
  return shards;
}

std::string hf_shard_file_name(std::size_t shard, std::size_t shards) {
  if (shards == 1) return kHfSingleFile;
  char name[96];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", shard + 1, shards);
  return name;
}

namespace {

// A JSON string as Python's json.dumps writes it (ensure_ascii): nlohmann's escaping with ASCII output.
std::string json_string(const std::string& text) { return nlohmann::json(text).dump(-1, ' ', true); }

}  // namespace

std::string hf_index_json(std::uint64_t total_size, const std::vector<std::pair<std::string, std::string>>& extra_metadata,
                          const std::vector<std::pair<std::string, std::string>>& weight_map) {
  // Written out item by item, in the order given (an ordered JSON object would take quadratic time
  // for 100,000 tensors). json.dump(indent=2): one item per line, ": " after keys, "," at line ends.
  std::string text = "{\n  \"metadata\": {\n    \"total_size\": " + std::to_string(total_size);
  for (const auto& [key, value] : extra_metadata) text += ",\n    " + json_string(key) + ": " + json_string(value);
  text += "\n  },\n  \"weight_map\": {";
  for (std::size_t i = 0; i < weight_map.size(); ++i) {
    text += (i == 0 ? "\n    " : ",\n    ") + json_string(weight_map[i].first) + ": " + json_string(weight_map[i].second);
  }
  text += weight_map.empty() ? "}\n}" : "\n  }\n}";
  return text;
}

HfIndex parse_hf_index(const std::string& text, const std::string& where) {
  const auto bad = [&](const std::string& why) {
    return Error(ErrorKind::bad_file, where + ": not a Hugging Face index file: " + why);
  };
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
  if (!document.is_object() || !document.contains("weight_map") || !document["weight_map"].is_object()) {
    throw bad("no \"weight_map\" object");
  }
  HfIndex index;
  if (document.contains("metadata")) {
    const auto& metadata = document["metadata"];
    if (!metadata.is_object()) throw bad("\"metadata\" is not an object");
    for (const auto& [key, value] : metadata.items()) {
      if (key == "total_size") {
        if (!value.is_number_unsigned()) throw bad("\"total_size\" is not a non-negative integer");
        index.total_size = value.get<std::uint64_t>();
      } else {
        index.metadata.emplace_back(key, value.is_string() ? value.get<std::string>() : value.dump());
      }
    }
  }
  for (const auto& [tensor, file] : document["weight_map"].items()) {
    if (!file.is_string()) throw bad("the file of tensor " + detail::quote(tensor) + " is not a string");
    index.weight_map.emplace_back(tensor, file.get<std::string>());
  }
  return index;
}

std::optional<std::pair<std::size_t, std::size_t>> parse_hf_shard_file_name(std::string_view name) {
  constexpr std::string_view kPrefix = "model-", kMiddle = "-of-", kSuffix = ".safetensors";
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return std::nullopt;
  const std::string_view body = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  const std::size_t middle = body.find(kMiddle);
  if (middle == std::string_view::npos) return std::nullopt;
  const auto number = [](std::string_view digits) -> std::optional<std::size_t> {
    if (digits.empty() || digits.size() > 18) return std::nullopt;
    std::size_t value = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<std::size_t>(c - '0');
    }
    return value;
  };
  const auto shard = number(body.substr(0, middle));
  const auto shards = number(body.substr(middle + kMiddle.size()));
  if (!shard || !shards || *shards < 2 || *shard < 1 || *shard > *shards) return std::nullopt;
  if (hf_shard_file_name(*shard - 1, *shards) != name) return std::nullopt;  // the zero padding as written
  return std::pair{*shard - 1, *shards};
}

bool is_hf_weights_file_name(std::string_view name) {
  return name == kHfSingleFile || name == kHfIndexFile || parse_hf_shard_file_name(name).has_value();
}

HfIndexSplit split_of_index(const HfIndex& index, const std::vector<std::string>& names) {
  const auto problem = [](std::string why) { return HfIndexSplit{std::nullopt, std::move(why)}; };
  std::map<std::string_view, std::size_t> position;
  for (std::size_t i = 0; i < names.size(); ++i) position.emplace(names[i], i);
  // The tensors: every one of `names` given a file, nothing else.
  std::vector<const std::string*> file_of(names.size(), nullptr);
  for (const auto& [tensor, file] : index.weight_map) {
    const auto found = position.find(tensor);
    if (found == position.end()) return problem("the index maps tensor " + detail::quote(tensor) + ", which the manifest does not have");
    file_of[found->second] = &file;
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (file_of[i] == nullptr) return problem("the index gives tensor " + detail::quote(names[i]) + " no file");
  }
  // The files: shard names of one count N, every shard given a tensor.
  HfSplit split;
  std::optional<std::pair<std::size_t, std::string>> count;  // N, and the first file that said so
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& file = *file_of[i];
    const auto parsed = parse_hf_shard_file_name(file);
    if (!parsed) {
      return problem("the index gives tensor " + detail::quote(names[i]) + " the file " + detail::quote(file) +
                     ", which is not a shard file name (model-0000K-of-0000N.safetensors, N >= 2; one shard is " + kHfSingleFile +
                     " without an index)");
    }
    if (count && count->first != parsed->second) {
      return problem("the index names file " + detail::quote(file) + " beside " + detail::quote(count->second) +
                     ": shards of " + std::to_string(parsed->second) + " and of " + std::to_string(count->first));
    }
    if (!count) {
      // Every shard holds a tensor, so a count beyond the tensors' is wrong (and is never allocated).
      if (parsed->second > names.size()) {
        return problem("the index names file " + detail::quote(file) + ", a shard of " + std::to_string(parsed->second) +
                       ", but there are only " + std::to_string(names.size()) + " tensors");
      }
      count.emplace(parsed->second, file);
      split.resize(parsed->second);
    }
    split[parsed->first].push_back(i);
  }
  for (std::size_t k = 0; k < split.size(); ++k) {
    if (split[k].empty()) {
      return problem("the index gives no tensor to " + hf_shard_file_name(k, split.size()) + " of its " + std::to_string(split.size()) +
                     " shards");
    }
  }
  return HfIndexSplit{std::move(split), {}};
}

}  // namespace shardinit
