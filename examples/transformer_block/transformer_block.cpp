// Training-code use of shardinit: each rank of a 1D tensor-parallel (Megatron / Colossal-AI
// Linear1D) transformer block initializes only its own shards of the block's parameters, in
// process, with Colossal-AI's default layer initializers and the layers' *global* fans.
//
//   mpirun -np 4 ./transformer_block
//
// Every rank then checks its shards against the same boxes of the whole tensors (which it can also
// compute, the tensors being small here) and prints one line; the exit status is 0 only if every
// shard matches on every rank.

#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <shardinit/mpi/mpi.hpp>
#include <shardinit/shardinit.hpp>

namespace {

using namespace shardinit;

struct Parameter {
  std::string name;
  Shape shape;           // global shape, as Linear1D stores it: weights (out, in)
  std::string preset;    // Colossal-AI 1d layout preset (docs/layouts.md)
  init::Initializer initializer;
  init::Fans fans;       // the layer's global in_features / out_features
};

std::vector<Parameter> block_parameters(Index hidden, Index ffn) {
  // Colossal-AI's Linear1D defaults: weight kaiming_uniform_(a=sqrt(5)), bias xavier_uniform_(a=1, scale=1)
  // called with fan_in only: together torch.nn.Linear's default init, on the global fans.
  const auto weight = init::kaiming_uniform_({.a = std::sqrt(5.0)});
  const auto bias = init::xavier_uniform_({.a = 1.0, .scale = 1.0});
  const auto linear = [&](const std::string& name, Index in, Index out, const std::string& kind) {
    return std::vector<Parameter>{
        {name + ".weight", {out, in}, kind, weight, {in, out}},
        {name + ".bias", {out}, kind + "_bias", bias, {in, std::nullopt}},
    };
  };
  std::vector<Parameter> parameters{
      {"ln1.weight", {hidden}, "replicate", init::ones_(), {}},
      {"ln1.bias", {hidden}, "replicate", init::zeros_(), {}},
  };
  for (auto group : {linear("attn.qkv", hidden, 3 * hidden, "linear_col"), linear("attn.proj", hidden, hidden, "linear_row"),
                     std::vector<Parameter>{{"ln2.weight", {hidden}, "replicate", init::ones_(), {}},
                                            {"ln2.bias", {hidden}, "replicate", init::zeros_(), {}}},
                     linear("mlp.fc1", hidden, ffn, "linear_col"), linear("mlp.fc2", ffn, hidden, "linear_row")}) {
    parameters.insert(parameters.end(), group.begin(), group.end());
  }
  return parameters;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);

  constexpr std::uint64_t kSeed = 42;
  const Index hidden = 64 * world, ffn = 4 * hidden;  // divisible by the tensor-parallel size
  const TensorParallelConfig tp{TensorParallelMode::one_d, world};
  const ProcessMesh mesh = colossal_mesh(tp);

  int mismatches = 0;
  Index local_elements = 0;
  for (const Parameter& p : block_parameters(hidden, ffn)) {
    const TensorSpec spec{p.name, p.shape, DType::f32, stream_from_name(p.name), p.initializer(p.fans)};
    const TensorLayout layout = colossal_layout(tp, p.preset, p.shape);
    const Box box = local_box(p.shape, layout, mesh, rank);

    // What training code does: allocate the local shard and fill it, nothing else.
    std::vector<float> shard(static_cast<std::size_t>(box.element_count()));
    mpi::fill_local(MPI_COMM_WORLD, kSeed, spec, layout, mesh, std::as_writable_bytes(std::span(shard)));
    local_elements += box.element_count();

    // The check: the shard is exactly that box of the whole tensor.
    std::vector<float> whole(static_cast<std::size_t>(element_count(p.shape)));
    fill_flat(kSeed, spec, 0, element_count(p.shape), std::as_writable_bytes(std::span(whole)));
    const auto strides = row_major_strides(p.shape);
    for (std::size_t i = 0; i < shard.size(); ++i) {
      const auto at = unflatten(box.extent, static_cast<Index>(i));
      Index flat = 0;
      for (std::size_t d = 0; d < at.size(); ++d) flat += (at[d] + box.start[d]) * strides[d];
      if (std::memcmp(&shard[i], &whole[static_cast<std::size_t>(flat)], sizeof(float)) != 0) {
        std::printf("rank %d: %s differs at global flat index %lld\n", rank, p.name.c_str(), static_cast<long long>(flat));
        ++mismatches;
        break;
      }
    }
    if (rank == 0) {
      std::printf("%-16s global %-12s rank 0 holds %-12s (%s)\n", p.name.c_str(), shape_to_string(p.shape).c_str(),
                  shape_to_string(box.extent).c_str(), p.preset.c_str());
    }
  }
  int total_mismatches = 0;
  MPI_Reduce(&mismatches, &total_mismatches, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
  std::printf("rank %d of %d: %lld parameter elements initialized locally, %s\n", rank, world,
              static_cast<long long>(local_elements), mismatches == 0 ? "every shard equals its slice of the whole" : "MISMATCH");
  MPI_Finalize();
  return (rank == 0 ? total_mismatches : mismatches) == 0 ? 0 : 1;
}
