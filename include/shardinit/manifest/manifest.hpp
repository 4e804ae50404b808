#pragma once
// The manifest: a JSON description of every tensor to initialize (docs/manifest.md). Parsing checks
// everything up front: a manifest that loads can be generated, so a run never fails half-way on
// bad input.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shardinit/definition/tensor_definition.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/initializers/colossal.hpp"
#include "shardinit/layout/colossal_presets.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/layout/topology.hpp"

namespace shardinit {

// A manifest's tensor: its definition resolved for the manifest's job.
using ManifestTensor = ResolvedTensor;

// The file a manifest was read from, as load_manifest found it: writers refuse to replace it.
struct ManifestSource {
  std::filesystem::path path;
  std::uint64_t device = 0;  // st_dev and st_ino: the same file under any name
  std::uint64_t inode = 0;
  std::string role = "manifest";  // for messages: "the manifest m.json", "the model config config.json"
};

// The largest manifest load_manifest reads (the size of the largest safetensors header, which holds the
// manifest's canonical spec: a longer manifest could not be written anyway).
inline constexpr std::uint64_t kMaxManifestBytes = 100'000'000;

struct Manifest {
  std::uint64_t seed = 0;
  std::vector<ManifestTensor> tensors;  // in manifest order
  std::optional<std::vector<int>> mesh;            // "mesh": [d0, d1, ...] or {"name": d0, ...}
  std::vector<std::string> mesh_axis_names;        // the names of a "mesh" object's axes, in order
  // "parallel": {"data", "pipeline", "tensor": {"mode", "size", "depth"}, "order", "expert", "data_partition"}
  std::optional<Topology> parallel;
  std::optional<ManifestSource> source;            // set by load_manifest
};

// The process mesh of a run with `world` ranks: the topology's for "parallel" (data derived from the
// world unless given), the given "mesh", or [world]. With world > 1 the mesh must have exactly `world`
// ranks (Error(invalid_argument) otherwise). A single process fills every tensor whole whatever the
// mesh: for world == 1 the result has the declared mesh's axes, each of size 1.
[[nodiscard]] ProcessMesh manifest_mesh(const Manifest& manifest, int world);

// What `rank` of a run with `world` ranks holds of each tensor it holds (those of other pipeline stages
// and other expert ranks' experts are left out), in manifest order: the box, or the zero3 range of it. Throws as manifest_mesh, and
// Error(invalid_argument) for a rank outside the world.
struct TensorHolding {
  const ManifestTensor* tensor;
  Holding holding;
};
[[nodiscard]] std::vector<TensorHolding> manifest_holdings(const Manifest& manifest, int world, int rank);

// Fills what `rank` of a run with `world` ranks holds of the manifest's tensor `name` into `out`, as
// fill_shard does for its spec and layout on manifest_mesh(manifest, world). Throws
// Error(invalid_argument) for an unknown name, and as fill_shard.
Holding fill_shard(const Manifest& manifest, std::string_view name, int world, int rank, std::span<std::byte> out);

// Parses a "parallel" object alone, with the rules and messages of a manifest's (the Python
// module's parallel=). Throws Error(parse) for malformed JSON, Error(invalid_argument) otherwise.
[[nodiscard]] Topology parse_topology_json(std::string_view json_text);

// Parses manifest JSON. Throws Error(parse) with line and column for malformed JSON, and
// Error(invalid_argument) naming the tensor, the key and the bad value for anything else.
// `source` names the input in messages (a path, or "<string>").
[[nodiscard]] Manifest parse_manifest(std::string_view json_text, std::string_view source = "<string>");

// Reads and parses a manifest file; Error(io) when it cannot be read or is not a regular file (a FIFO
// or a device is refused without blocking), Error(invalid_argument) when it is larger than
// kMaxManifestBytes.
[[nodiscard]] Manifest load_manifest(const std::filesystem::path& path);

// A manifest's "init" object for `initializer`, with every parameter spelled out
// ({"fn":"kaiming_uniform","a":2.23606797749979,"mode":"fan_in","nonlinearity":"leaky_relu"}): parsed
// back, it is the same initializer.
[[nodiscard]] std::string initializer_json(const init::Initializer& initializer);

// The canonical JSON of everything that determines the values: format version, seed, and per tensor
// (sorted by name) name, dtype, shape, stream, initializer with all parameters, the fans it reads and
// the resulting distribution. Independent of key order, whitespace and tensor order in the manifest.
[[nodiscard]] std::string canonical_spec_json(const Manifest& manifest);

// "sha256:" + hex SHA-256 of canonical_spec_json(manifest).
[[nodiscard]] std::string manifest_digest(const Manifest& manifest);

// "sha256:" + hex SHA-256 of everything that decides what a run does: the canonical spec, the mesh
// (or "parallel") and every tensor's layout. Two ranks of one job must have the same; two files with
// the same manifest_digest may come from manifests with different run digests (layouts never change
// the bytes).
[[nodiscard]] std::string manifest_run_digest(const Manifest& manifest);

}  // namespace shardinit
