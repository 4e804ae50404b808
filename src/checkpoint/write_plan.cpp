#include "shardinit/checkpoint/write_plan.hpp"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/checkpoint/rank_checkpoint.hpp"
#include "shardinit/error.hpp"
#include "shardinit/version.hpp"
#include "util/checked.hpp"
#include "util/printable.hpp"

namespace shardinit {

namespace {

constexpr std::uint64_t kLargeAlignment = std::uint64_t{1} << 20;
constexpr std::uint64_t kSmallAlignment = std::uint64_t{4} << 10;
constexpr std::uint64_t kLargePerRank = std::uint64_t{64} << 20;

std::uint64_t round_up(std::uint64_t value, std::uint64_t to) { return (value + to - 1) / to * to; }

// A whole manifest tensor, stored as itself.
StoredTensor whole(const ManifestTensor& t) { return StoredTensor{&t, t.shape, Box::whole(t.shape), 0, element_count(t.shape)}; }

// One file of whole tensors (`tensors` in state-dict order), laid out as safetensors lays them out.
PlannedFile whole_tensor_file(std::string name, const std::vector<const ManifestTensor*>& tensors, SafetensorsMetadata metadata) {
  std::vector<SafetensorsLayout::Entry> entries;
  std::map<std::string, const ManifestTensor*, std::less<>> by_name;
  for (const ManifestTensor* t : tensors) {
    entries.push_back({t->name, t->dtype, t->shape});
    by_name.emplace(t->name, t);
  }
  SafetensorsLayout layout(std::move(entries), metadata);
  std::vector<StoredTensor> stored;
  for (const SafetensorsTensor& entry : layout.tensors()) stored.push_back(whole(*by_name.at(entry.name)));
  return PlannedFile{std::move(name), std::move(layout), std::move(metadata), std::move(stored)};
}

std::vector<const ManifestTensor*> all_tensors(const Manifest& manifest) {
  std::vector<const ManifestTensor*> tensors;
  for (const ManifestTensor& t : manifest.tensors) tensors.push_back(&t);
  return tensors;
}

// A given split holds every one of `tensors` positions exactly once, in shards that are not empty.
void check_split(const HfSplit& split, std::size_t tensors) {
  std::vector<bool> seen(tensors, false);
  std::size_t placed = 0;
  for (std::size_t s = 0; s < split.size(); ++s) {
    if (split[s].empty()) throw Error(ErrorKind::invalid_argument, "shard " + std::to_string(s + 1) + " of the split holds no tensor");
    for (std::size_t i : split[s]) {
      if (i >= tensors || seen[i]) {
        throw Error(ErrorKind::invalid_argument, "the split places tensor position " + std::to_string(i) +
                                                     (i >= tensors ? " of " + std::to_string(tensors) + " tensors" : " twice"));
      }
      seen[i] = true;
      ++placed;
    }
  }
  if (placed != tensors) {
    throw Error(ErrorKind::invalid_argument, "the split places " + std::to_string(placed) + " of the " + std::to_string(tensors) + " tensors");
  }
}

void plan_hf(const Manifest& manifest, const OutputRequest& request, WritePlan& plan) {
  std::vector<std::uint64_t> sizes;
  std::uint64_t total = 0;
  for (const ManifestTensor& t : manifest.tensors) {
    sizes.push_back(static_cast<std::uint64_t>(element_count(t.shape)) * dtype_size(t.dtype));
    total += sizes.back();
  }
  if (request.split_as_found && !request.split) {
    throw Error(ErrorKind::invalid_argument, "split_as_found: the split is read from the directory first (verify_output reads it)");
  }
  if (request.split) check_split(*request.split, manifest.tensors.size());
  plan.split_given = request.split.has_value();
  const HfSplit shards = request.split ? *request.split : split_into_shards(sizes, request.max_shard_size);
  if (shards.size() <= 1) {  // one file, no index: as huggingface_hub, with the whole metadata
    plan.files.push_back(whole_tensor_file(kHfSingleFile, all_tensors(manifest), checkpoint_metadata(manifest)));
    return;
  }
  // Shards record who made them; the spec is recorded once, in the index.
  const SafetensorsMetadata shard_metadata = checkpoint_metadata(manifest, false);
  std::vector<std::pair<std::string, std::string>> weight_map;
  for (std::size_t s = 0; s < shards.size(); ++s) {
    const std::string name = hf_shard_file_name(s, shards.size());
    std::vector<const ManifestTensor*> tensors;
    for (std::size_t i : shards[s]) {
      tensors.push_back(&manifest.tensors[i]);
      weight_map.emplace_back(manifest.tensors[i].name, name);
    }
    plan.files.push_back(whole_tensor_file(name, tensors, shard_metadata));
  }
  std::vector<std::pair<std::string, std::string>> extra;
  for (const auto& [key, value] : checkpoint_metadata(manifest)) {
    if (key != kMetaFormat) extra.emplace_back(key, value);
  }
  plan.index = hf_index_json(total, extra, weight_map);
}

// Companion names are plain, distinct, and none of the directory's own files.
void add_companions(const OutputRequest& request, WritePlan& plan) {
  for (std::size_t i = 0; i < request.companions.size(); ++i) {
    const std::string& name = request.companions[i].name;
    const auto taken = [&](const std::string& other) { return other == name; };
    const bool clashes = name == kHfIndexFile || std::any_of(plan.files.begin(), plan.files.end(), [&](const PlannedFile& f) { return taken(f.name); }) ||
                         std::any_of(request.companions.begin(), request.companions.begin() + static_cast<std::ptrdiff_t>(i),
                                     [&](const CompanionFile& c) { return taken(c.name); });
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos || name.find('\0') != std::string::npos) {
      throw Error(ErrorKind::invalid_argument, "companion file name " + detail::quote(name) + " is not a plain file name");
    }
    if (clashes) throw Error(ErrorKind::invalid_argument, "companion file name " + detail::quote(name) + " is taken in the directory");
  }
  plan.companions = request.companions;
}

void plan_per_rank(const Manifest& manifest, WritePlan& plan) {
  const ProcessMesh mesh = manifest_mesh(manifest, plan.world);
  if (plan.rank < 0 || plan.rank >= mesh.size()) {
    throw Error(ErrorKind::invalid_argument, "rank " + std::to_string(plan.rank) + " is not in mesh " + mesh.to_string() + " (" +
                                                 std::to_string(mesh.size()) + " ranks)");
  }
  std::vector<SafetensorsLayout::Entry> entries;
  std::map<std::string, StoredTensor, std::less<>> by_name;
  nlohmann::json shards = nlohmann::json::object();
  for (const ManifestTensor& t : manifest.tensors) {
    check_layout(t.layout, t.shape.size(), mesh);
    if (!holds(t.layout, mesh, plan.rank)) continue;  // another pipeline stage's (or expert rank's) tensor: not in this rank's file
    const Holding h = local_holding(t.shape, t.layout, mesh, plan.rank);
    // A zero3 range is stored as the 1-d tensor of its real elements (DeepSpeed's ds_tensor less its
    // padding); "flat" is [first, count] in the row-major order of the box, "partition" the size of
    // every rank's partition with padding.
    entries.push_back({t.name, t.dtype, h.local_shape(t.layout)});
    shards[t.name] = {{"shape", t.shape}, {"start", h.box.start}, {"extent", h.box.extent}, {"layout", t.layout.to_string()}};
    // A fused dimension: the box is one of layout_space (the dimension as (parts, chunk)), and the
    // stored tensor merges it back.
    if (t.layout.fused) shards[t.name]["fused"] = {t.layout.fused->dim, t.layout.fused->parts};
    if (h.flat) {
      shards[t.name]["flat"] = {h.first, h.count};
      shards[t.name]["partition"] = h.buffer;
    }
    by_name.emplace(t.name, StoredTensor{&t, h.space, h.box, h.first, h.count, h.flat});
  }
  // The spec once per set: in rank 0's file (inspect reads it there); the others name the digest.
  SafetensorsMetadata metadata = checkpoint_metadata(manifest, plan.rank == 0);
  metadata[kMetaRank] = std::to_string(plan.rank);
  metadata[kMetaWorld] = std::to_string(mesh.size());
  metadata[kMetaMesh] = mesh.to_string();
  metadata[kMetaShards] = shards.dump();
  SafetensorsLayout layout(std::move(entries), metadata);
  std::vector<StoredTensor> stored;
  for (const SafetensorsTensor& entry : layout.tensors()) stored.push_back(by_name.at(entry.name));
  plan.files.push_back(PlannedFile{rank_file_name(plan.rank, mesh.size()), std::move(layout), std::move(metadata), std::move(stored)});
  plan.ranges.push_back(FileRange{0, 0, plan.files[0].layout.file_size()});
}

// This rank's part of the shared files laid end to end, each starting at a multiple of the alignment.
void split_shared(WritePlan& plan) {
  std::uint64_t total = 0;
  for (const PlannedFile& f : plan.files) total += f.layout.file_size();
  const std::uint64_t alignment = range_alignment(total, plan.world);
  std::vector<std::uint64_t> starts;
  std::uint64_t end = 0;
  for (const PlannedFile& f : plan.files) {
    starts.push_back(end);
    end = round_up(end + f.layout.file_size(), alignment);
  }
  // Rank r: units [units * r / world, units * (r + 1) / world) of `alignment` bytes each.
  const auto boundary = [&](int r) {
    const detail::uint128 units = end / alignment;
    return static_cast<std::uint64_t>(units * static_cast<unsigned>(r) / static_cast<unsigned>(plan.world)) * alignment;
  };
  const std::uint64_t mine_begin = boundary(plan.rank), mine_end = boundary(plan.rank + 1);
  for (std::size_t i = 0; i < plan.files.size(); ++i) {
    const std::uint64_t file_begin = starts[i], file_end = starts[i] + plan.files[i].layout.file_size();
    const std::uint64_t b = std::max(mine_begin, file_begin), e = std::min(mine_end, file_end);
    if (b < e) plan.ranges.push_back(FileRange{i, b - file_begin, e - file_begin});
  }
}

}  // namespace

const char* output_format_name(OutputFormat format) noexcept {
  switch (format) {
    case OutputFormat::safetensors: return "safetensors";
    case OutputFormat::hf: return "hf";
    case OutputFormat::per_rank: return "per-rank";
  }
  return "?";
}

SafetensorsMetadata checkpoint_metadata(const Manifest& manifest, bool with_spec) {
  SafetensorsMetadata metadata{{kMetaFormat, "pt"},
                               {kMetaStreamFormat, std::string(kStreamFormatVersion)},
                               {kMetaSeed, std::to_string(manifest.seed)},
                               {kMetaDigest, manifest_digest(manifest)}};
  if (with_spec) metadata[kMetaSpec] = canonical_spec_json(manifest);
  return metadata;
}

std::uint64_t range_alignment(std::uint64_t total_bytes, int world) noexcept {
  return total_bytes / static_cast<std::uint64_t>(std::max(world, 1)) >= kLargePerRank ? kLargeAlignment : kSmallAlignment;
}

std::uint64_t WritePlan::total_bytes() const noexcept {
  std::uint64_t total = index ? index->size() : 0;
  for (const CompanionFile& c : companions) total += c.text.size();
  for (const PlannedFile& f : files) total += f.layout.file_size();
  return total;
}

std::uint64_t WritePlan::bytes_of_this_rank() const noexcept {
  std::uint64_t total = 0;
  for (const FileRange& r : ranges) total += r.end - r.begin;
  return total;
}

Index WritePlan::elements_of_this_rank() const {
  Index total = 0;
  for (const FileRange& r : ranges) {
    const PlannedFile& f = files[r.file];
    for (const SafetensorsTensor& t : f.layout.tensors()) {
      const std::uint64_t b = std::max(r.begin, f.layout.data_start() + t.begin);
      const std::uint64_t e = std::min(r.end, f.layout.data_start() + t.end);
      if (b < e) total += static_cast<Index>((e - b) / dtype_size(t.dtype));
    }
  }
  return total;
}

std::int64_t WritePlan::tensor_count() const noexcept {
  std::int64_t total = 0;
  for (const PlannedFile& f : files) total += static_cast<std::int64_t>(f.stored.size());
  return total;
}

WritePlan plan_output(const Manifest& manifest, const OutputRequest& request, int world, int rank) {
  if (world < 1 || rank < 0 || rank >= world) {
    throw Error(ErrorKind::invalid_argument, "rank " + std::to_string(rank) + " is not in a world of " + std::to_string(world));
  }
  WritePlan plan;
  plan.format = request.format;
  plan.world = world;
  plan.rank = rank;
  switch (request.format) {
    case OutputFormat::per_rank:
      plan_per_rank(manifest, plan);
      return plan;
    case OutputFormat::safetensors:
      plan.files.push_back(whole_tensor_file("", all_tensors(manifest), checkpoint_metadata(manifest)));
      break;
    case OutputFormat::hf:
      plan_hf(manifest, request, plan);
      add_companions(request, plan);
      break;
  }
  if (request.format != OutputFormat::hf && !request.companions.empty()) {
    throw Error(ErrorKind::invalid_argument, std::string("companion files (") + request.companions[0].name +
                                                 ", ...) go only into a Hugging Face directory, not a " +
                                                 output_format_name(request.format) + " output");
  }
  // Shared files: the manifest must still fit the world (the mesh decides nothing here, but a
  // manifest whose layouts need 8 ranks is refused at 3 whatever is written).
  const ProcessMesh mesh = manifest_mesh(manifest, world);
  for (const ManifestTensor& t : manifest.tensors) check_layout(t.layout, t.shape.size(), mesh);
  split_shared(plan);
  return plan;
}

}  // namespace shardinit
