#include "shardinit/layout/shard.hpp"

#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit {

Box fill_shard(std::uint64_t seed, const TensorSpec& spec, const TensorLayout& layout, const ProcessMesh& mesh,
               int rank, std::span<std::byte> out) {
  try {
    check_layout(layout, spec.shape.size(), mesh);
    if (rank < 0 || rank >= mesh.size()) {
      throw Error(ErrorKind::invalid_argument, "rank " + std::to_string(rank) + " is not in mesh " + mesh.to_string() +
                                                   " (" + std::to_string(mesh.size()) + " ranks)");
    }
  } catch (const Error& e) {
    throw Error(e.kind(), "tensor '" + detail::printable(spec.name) + "': " + e.what());
  }
  const Box box = local_box(spec.shape, layout, mesh, rank);
  if (!holds(layout, mesh, rank)) {
    // Another stage's tensor: nothing to fill (a scalar's box would otherwise read as one element).
    if (!out.empty()) {
      throw Error(ErrorKind::invalid_argument, "tensor '" + detail::printable(spec.name) + "': rank " + std::to_string(rank) +
                                                   " does not hold it (" + layout.to_string() + "), but the output buffer holds " +
                                                   std::to_string(out.size()) + " bytes");
    }
    return box;
  }
  fill_box(seed, spec, box, out);
  return box;
}

}  // namespace shardinit
