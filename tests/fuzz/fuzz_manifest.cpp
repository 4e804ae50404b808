// libFuzzer target: the manifest parser, and what a parsed manifest feeds (the canonical spec and its
// digest, the mesh at several rank counts, every rank's box of every tensor, the checkpoint metadata).
// Any input must either parse or throw shardinit::Error; anything else (another exception, a crash,
// a sanitizer report, a huge allocation) is a finding. Run by scripts/fuzz.sh; the corpus and the
// regressions are replayed in CTest by fuzz_replay.cpp.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "checkpoint/checkpoint_internal.hpp"
#include "shardinit/error.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/manifest/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace shardinit;
  Manifest manifest;
  try {
    manifest = parse_manifest(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json");
  } catch (const Error&) {
    return 0;  // a clear refusal is the expected outcome for most inputs
  }
  (void)canonical_spec_json(manifest);
  (void)manifest_digest(manifest);
  (void)checkpoint_metadata(manifest);
  for (const int world : {1, 2, 3, 4, 8}) {
    try {
      const ProcessMesh mesh = manifest_mesh(manifest, world);
      for (const ManifestTensor& t : manifest.tensors) {
        for (int rank = 0; rank < world; ++rank) (void)local_box(t.shape, t.layout, mesh, rank);
      }
    } catch (const Error&) {
      // a mesh that does not fit this rank count
    }
  }
  return 0;
}
