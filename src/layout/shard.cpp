#include "shardinit/layout/shard.hpp"

#include <algorithm>

#include "shardinit/error.hpp"
#include "util/printable.hpp"

namespace shardinit {

void fill_holding(const TensorFiller& filler, const Holding& holding, std::span<std::byte> out) {
  const std::size_t held = static_cast<std::size_t>(holding.count) * dtype_size(filler.spec().dtype);
  if (out.size() < held) {
    throw Error(ErrorKind::invalid_argument, "tensor '" + detail::printable(filler.spec().name) + "': the output buffer holds " +
                                                 std::to_string(out.size()) + " bytes, the " + std::to_string(holding.count) +
                                                 " elements held need " + std::to_string(held));
  }
  filler.fill_box_range(holding.space, holding.box, holding.first, holding.count, out.first(held));
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(held), out.end(), std::byte{0});  // DeepSpeed's padding
}

Holding fill_shard(std::uint64_t seed, const TensorSpec& spec, const TensorLayout& layout, const ProcessMesh& mesh,
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
  const Holding holding = local_holding(spec.shape, layout, mesh, rank);
  if (!holds(layout, mesh, rank)) {
    // Another stage's tensor: nothing to fill (a scalar's box would otherwise read as one element).
    if (!out.empty()) {
      throw Error(ErrorKind::invalid_argument, "tensor '" + detail::printable(spec.name) + "': rank " + std::to_string(rank) +
                                                   " does not hold it (" + layout.to_string() + "), but the output buffer holds " +
                                                   std::to_string(out.size()) + " bytes");
    }
    return holding;
  }
  const std::size_t element = dtype_size(spec.dtype);
  if (holding.flat) {
    if (out.size() != static_cast<std::size_t>(holding.count) * element && out.size() != static_cast<std::size_t>(holding.buffer) * element) {
      throw Error(ErrorKind::invalid_argument, "tensor '" + detail::printable(spec.name) + "': rank " + std::to_string(rank) +
                                                   " holds " + std::to_string(holding.count) + " elements (its zero3 partition has " +
                                                   std::to_string(holding.buffer) + " with padding), but the output buffer holds " +
                                                   std::to_string(out.size()) + " bytes");
    }
    fill_holding(TensorFiller(seed, spec), holding, out);
    return holding;
  }
  // The box is one of the layout's space (the tensor's shape unless a dimension is fused).
  TensorFiller(seed, spec).fill_box_range(holding.space, holding.box, 0, holding.count, out);
  return holding;
}

}  // namespace shardinit
