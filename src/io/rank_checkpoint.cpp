#include "shardinit/io/rank_checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "io/checkpoint_internal.hpp"
#include "io/leftovers.hpp"
#include "io/staged_file.hpp"
#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit {

namespace {

struct RankPlan {
  SafetensorsMetadata metadata;
  SafetensorsLayout layout;
  std::map<std::string, Holding> holdings;
};

RankPlan plan(const Manifest& manifest, const ProcessMesh& mesh, int rank) {
  if (rank < 0 || rank >= mesh.size()) {
    throw Error(ErrorKind::invalid_argument,
                "rank " + std::to_string(rank) + " is not in mesh " + mesh.to_string() + " (" + std::to_string(mesh.size()) + " ranks)");
  }
  std::vector<SafetensorsLayout::Entry> entries;
  std::map<std::string, Holding> holdings;
  nlohmann::json shards = nlohmann::json::object();
  for (const ManifestTensor& t : manifest.tensors) {
    check_layout(t.layout, t.shape.size(), mesh);
    if (!holds(t.layout, mesh, rank)) continue;  // another pipeline stage's tensor: not in this rank's file
    const Holding h = local_holding(t.shape, t.layout, mesh, rank);
    // A zero3 range is stored as the 1-d tensor of its real elements (DeepSpeed's ds_tensor less its
    // padding); "flat" is [first, count] in the row-major order of the box, "partition" the size of
    // every rank's partition with padding.
    entries.push_back({t.name, t.dtype, h.flat ? Shape{h.count} : h.box.extent});
    shards[t.name] = {{"shape", t.shape}, {"start", h.box.start}, {"extent", h.box.extent}, {"layout", t.layout.to_string()}};
    if (h.flat) {
      shards[t.name]["flat"] = {h.first, h.count};
      shards[t.name]["partition"] = h.buffer;
    }
    holdings.emplace(t.name, h);
  }
  SafetensorsMetadata metadata = checkpoint_metadata(manifest);
  metadata[kMetaRank] = std::to_string(rank);
  metadata[kMetaWorld] = std::to_string(mesh.size());
  metadata[kMetaMesh] = mesh.to_string();
  metadata[kMetaShards] = shards.dump();
  SafetensorsLayout layout(std::move(entries), metadata);
  return RankPlan{std::move(metadata), std::move(layout), std::move(holdings)};
}

TensorProducer shard_producer(const std::map<std::string, TensorFiller>& fillers, const std::map<std::string, Holding>& holdings) {
  return [&fillers, &holdings](const SafetensorsTensor& t, Index first, Index count, std::span<std::byte> out) {
    const Holding& h = holdings.at(t.name);
    fillers.at(t.name).fill_box_range(h.box, h.first + first, count, out);
  };
}

}  // namespace

std::string rank_file_name(int rank, int world) {
  char name[64];
  std::snprintf(name, sizeof name, "rank-%05d-of-%05d.safetensors", rank, world);
  return name;
}

SafetensorsLayout rank_checkpoint_layout(const Manifest& manifest, const ProcessMesh& mesh, int rank) {
  return plan(manifest, mesh, rank).layout;
}

namespace detail {

StagedFile stage_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                 const std::filesystem::path& directory, bool overwrite, FillOptions options,
                                 WriteStats& stats, const Heartbeat& heartbeat) {
  const RankPlan p = plan(manifest, mesh, rank);
  const auto fillers = fillers_by_name(manifest, options);
  auto made = std::make_unique<MadeDirectories>(directory);
  StagedFile file = stage_safetensors(directory / rank_file_name(rank, mesh.size()), p.layout,
                                      shard_producer(fillers, p.holdings), output_policy(manifest, overwrite), heartbeat);
  file.attach(std::move(made));
  stats = WriteStats{};
  stats.tensors = static_cast<std::int64_t>(p.holdings.size());
  for (const auto& [name, h] : p.holdings) stats.elements += h.count;
  stats.bytes = p.layout.file_size();
  return file;
}

MadeDirectories::MadeDirectories(const std::filesystem::path& given) {
  const std::filesystem::path directory = given.lexically_normal();
  // The missing ones, outermost first.
  std::vector<std::filesystem::path> missing;
  for (std::filesystem::path p = directory; !p.empty() && !std::filesystem::exists(p); p = p.parent_path()) {
    missing.insert(missing.begin(), p);
    if (p == p.parent_path()) break;
  }
  if (!missing.empty()) {
    // Registered first, as one entry (innermost, up to the outermost): a process killed right after
    // making them still leaves nothing.
    leftover_ = register_leftover(missing.back().string(), LeftoverKind::directories, missing.front().string());
    std::error_code first_error;
    for (const auto& p : missing) {
      std::error_code ec;
      if (std::filesystem::create_directory(p, ec)) made_.push_back(p);
      else if (ec && !first_error) first_error = ec;
    }
    if (made_.empty()) {
      unregister_leftover(std::exchange(leftover_, -1));  // another rank made them: its to remove
    } else if (made_.front() != missing.front()) {
      // Another rank made the outer ones: ours start lower.
      unregister_leftover(leftover_);
      leftover_ = register_leftover(made_.back().string(), LeftoverKind::directories, made_.front().string());
    }
    std::error_code ec;
    if (!std::filesystem::is_directory(directory, ec)) {
      abandon();  // a constructor that throws runs no destructor
      throw Error(ErrorKind::io, "cannot make the output directory " + printable(directory.string()) + ": " +
                                     (first_error ? first_error.message() : std::string("something else than a directory is there")));
    }
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    throw Error(ErrorKind::io, "cannot make the output directory " + printable(directory.string()) +
                                   ": something else than a directory is there");
  }
}

void MadeDirectories::abandon() noexcept {
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
    std::error_code ec;
    std::filesystem::remove(*it, ec);  // only while empty
  }
  made_.clear();
  unregister_leftover(std::exchange(leftover_, -1));
}

void MadeDirectories::keep() noexcept {
  unregister_leftover(std::exchange(leftover_, -1));
  made_.clear();
}

}  // namespace detail

WriteStats write_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                 const std::filesystem::path& directory, bool overwrite, FillOptions options) {
  WriteStats stats;
  detail::stage_rank_checkpoint(manifest, mesh, rank, directory, overwrite, options, stats).commit();
  return stats;
}

VerifyResult verify_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                    const std::filesystem::path& directory, FillOptions options) {
  return detail::verify_rank_checkpoint(manifest, mesh, rank, directory, options, {});
}

VerifyResult detail::verify_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                            const std::filesystem::path& directory, FillOptions options,
                                            const Heartbeat& heartbeat) {
  const RankPlan p = plan(manifest, mesh, rank);
  const auto fillers = fillers_by_name(manifest, options);
  VerifyResult result = verify_file(p.layout, p.metadata, shard_producer(fillers, p.holdings),
                                    directory / rank_file_name(rank, mesh.size()), heartbeat);
  if (result.tensor && result.index) {
    // The file holds the local shard; say where the element sits in the global tensor too.
    const Holding& h = p.holdings.at(*result.tensor);
    const Box& box = h.box;
    const ManifestTensor& tensor = *std::find_if(manifest.tensors.begin(), manifest.tensors.end(),
                                                 [&](const ManifestTensor& t) { return t.name == *result.tensor; });
    std::vector<Index> global = unflatten(box.extent, h.first + *result.index);
    Index flat = 0;
    const auto strides = row_major_strides(tensor.shape);
    for (std::size_t d = 0; d < global.size(); ++d) {
      global[d] += box.start[d];
      flat += global[d] * strides[d];
    }
    result.message += std::string(" [local shard of ") + (h.flat ? "the zero3 range [" + std::to_string(h.first) + ", " +
                      std::to_string(h.first + h.count) + ") of " : "") + "box " + box.to_string() + "; global element " + shape_to_string(global) +
                      ", global flat index " + std::to_string(flat) + "]";
  }
  return result;
}

}  // namespace shardinit
