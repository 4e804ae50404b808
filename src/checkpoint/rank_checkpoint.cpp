#include "shardinit/checkpoint/rank_checkpoint.hpp"

#include <cstdio>

#include "shardinit/checkpoint/write_plan.hpp"

namespace shardinit {

std::string rank_file_name(int rank, int world) {
  char name[64];
  std::snprintf(name, sizeof name, "rank-%05d-of-%05d.safetensors", rank, world);
  return name;
}

SafetensorsLayout rank_checkpoint_layout(const Manifest& manifest, const ProcessMesh& mesh, int rank) {
  return plan_output(manifest, output_request(OutputFormat::per_rank), mesh.size(), rank).files.at(0).layout;
}

WriteStats write_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                 const std::filesystem::path& directory, const WriteOptions& options) {
  return write_output(manifest, directory, output_request(OutputFormat::per_rank), options, RankInJob{rank, mesh.size()});
}

VerifyResult verify_rank_checkpoint(const Manifest& manifest, const ProcessMesh& mesh, int rank,
                                    const std::filesystem::path& directory, const VerifyOptions& options) {
  return verify_output(manifest, directory, output_request(OutputFormat::per_rank), options, RankInJob{rank, mesh.size()});
}

}  // namespace shardinit
