// The canonical form of a manifest: what determines the values, and nothing else. It is recorded in
// every output file and hashed into the manifest digest, so it must not depend on key order,
// whitespace, tensor order, or (later) on how the tensors are laid out over ranks.

#include <algorithm>

#include <nlohmann/json.hpp>

#include "shardinit/manifest/manifest.hpp"
#include "shardinit/util/sha256.hpp"
#include "shardinit/version.hpp"

namespace shardinit {

namespace {

using nlohmann::json;

json initializer_object(const init::Initializer& initializer) {
  json j;
  j["fn"] = std::string(init::kind_name(initializer.kind()));
  struct Visitor {
    json& j;
    void operator()(std::monostate) const {}
    void operator()(const init::ConstantOptions& o) const { j["val"] = o.value; }
    void operator()(const init::UniformOptions& o) const { j["a"] = o.a; j["b"] = o.b; }
    void operator()(const init::NormalOptions& o) const { j["mean"] = o.mean; j["std"] = o.std; }
    void operator()(const init::TruncNormalOptions& o) const {
      j["mean"] = o.mean; j["std"] = o.std; j["a"] = o.a; j["b"] = o.b;
    }
    void operator()(const init::KaimingOptions& o) const {
      j["a"] = o.a;
      j["mode"] = std::string(init::fan_mode_name(o.mode));
      j["nonlinearity"] = std::string(init::nonlinearity_name(o.nonlinearity));
    }
    void operator()(const init::XavierUniformOptions& o) const { j["a"] = o.a; j["scale"] = o.scale; j["gain"] = o.gain; }
    void operator()(const init::XavierNormalOptions& o) const { j["scale"] = o.scale; j["gain"] = o.gain; }
  };
  std::visit(Visitor{j}, initializer.options());
  return j;
}

}  // namespace

std::string initializer_json(const init::Initializer& initializer) { return initializer_object(initializer).dump(); }

std::string canonical_spec_json(const Manifest& manifest) {
  std::vector<const ManifestTensor*> sorted;
  for (const auto& t : manifest.tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const auto* x, const auto* y) { return x->name < y->name; });
  json tensors = json::array();
  for (const ManifestTensor* t : sorted) {
    json j;
    j["name"] = t->name;
    j["dtype"] = std::string(dtype_name(t->dtype));
    j["shape"] = t->shape;
    j["stream"] = t->stream;
    j["init"] = initializer_object(t->initializer);
    if (t->fans.fan_in) j["fan_in"] = *t->fans.fan_in;
    if (t->fans.fan_out) j["fan_out"] = *t->fans.fan_out;
    if (!t->empty) j["distribution"] = describe(t->distribution);
    if (t->padding_idx) j["padding_idx"] = *t->padding_idx;  // only where given: other digests stay the same
    tensors.push_back(std::move(j));
  }
  json spec;
  spec["stream_format"] = std::string(kStreamFormatVersion);
  spec["seed"] = manifest.seed;
  spec["tensors"] = std::move(tensors);
  return spec.dump();  // object keys sorted, no whitespace, shortest round-trip numbers
}

std::string manifest_digest(const Manifest& manifest) { return "sha256:" + Sha256::hex(canonical_spec_json(manifest)); }

std::string manifest_run_digest(const Manifest& manifest) {
  // The spec decides the values; the mesh and the layouts decide who computes and writes what, and so
  // the sequence of collective steps: ranks that differ in either must not run together.
  json run;
  if (manifest.mesh) run["mesh"] = *manifest.mesh;
  if (!manifest.mesh_axis_names.empty()) run["mesh_axes"] = manifest.mesh_axis_names;
  if (manifest.parallel) {
    const Topology& t = *manifest.parallel;
    run["parallel"] = {{"mode", std::string(tensor_parallel_mode_name(t.tensor.mode))},
                       {"size", t.tensor.size},
                       {"depth", t.tensor.depth}};
    // The keys of the topology beyond the tensor part only where given: digests of manifests written
    // before them stay the same.
    if (t.data) run["parallel"]["data"] = *t.data;
    if (t.pipeline != 1) run["parallel"]["pipeline"] = t.pipeline;
    if (t.layers) {
      run["parallel"]["layers"] = t.layers->layers;
      run["parallel"]["partition"] = std::string(layer_partition_name(t.layers->partition));
    }
    const Topology defaults;
    if (t.expert != 1) run["parallel"]["expert"] = t.expert;
    if (t.data_partition != DataPartition::none) run["parallel"]["data_partition"] = std::string(data_partition_name(t.data_partition));
    if (t.order != defaults.order) {
      for (const ParallelAxis a : t.order) run["parallel"]["order"].push_back(std::string(parallel_axis_name(a)));
    }
  }
  json layouts = json::object();
  for (const auto& t : manifest.tensors) layouts[t.name] = t.layout.to_string();
  run["layouts"] = std::move(layouts);
  return "sha256:" + Sha256::hex(canonical_spec_json(manifest) + "\n" + run.dump());
}

}  // namespace shardinit
