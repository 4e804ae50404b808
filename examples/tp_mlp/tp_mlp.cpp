// A Megatron / Colossal-AI 1D tensor-parallel MLP block, initialized by shardinit inside the
// training process and run forward, against its single-process twin:
//
//   Z = GeLU(X W1^T + b1) W2^T + b2
//
//   fc1 = Linear1D_Col: W1 (ffn, hidden) split by rows (output features), b1 split alike;
//         each rank computes its own columns of the hidden activation, no communication.
//   fc2 = Linear1D_Row: W2 (hidden, ffn) split by columns (input features), b2 replicated;
//         each rank computes a partial product, then one all-reduce sums them.
//
//   mpirun -np 4 ./tp_mlp
//
// Parameters use Colossal-AI's default layer initializers with the layers' GLOBAL fans: weights
// kaiming_uniform_(a=sqrt(5)), biases xavier_uniform_(a=1, scale=1) with fan_in. Every rank fills
// only its shards; every rank also builds the whole block (small here) as the single-process twin.
//
// Checks, each rank, exit status 0 only if all hold everywhere:
//  1. every shard is bit for bit its slice of the whole parameter (shardinit's guarantee);
//  2. the hidden activation GeLU(X W1^T + b1) of this rank's columns is bit for bit the twin's (the
//     same dot products in the same order);
//  3. the output differs from the twin's only by the order of fc2's sums. Both orders compute
//     s = sum_f g_f w_f with at most F = ffn rounded additions per term, so each is within
//     gamma_F * sum_f |g_f w_f| of the exact sum (Higham, Accuracy and Stability, Thm 3.1;
//     gamma_n = n u / (1 - n u), u = 2^-24), and the bias adds one rounding each:
//       |z_parallel - z_single| <= 2 gamma_F sum_f |g_f w_f| + 2 u |z_single|.
//     With one rank the order is the same, and the outputs must be identical.
//
// With a square number of ranks (4: q = 2) it also runs a Colossal-AI 2D (SUMMA) Linear2D,
// Y = X W + b with W stored (in, out) in q x q blocks (preset "linear") and b in q^2 chunks
// (preset "linear_bias"): rank (i, j) gathers the blocks X[i, k] and W[k, j] for k = 0..q-1 by
// broadcasts along its row and column and accumulates them into one sum per output element in
// ascending input order, the single-process order, so its block of Y must equal the twin's bit
// for bit.

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <shardinit/mpi/mpi.hpp>
#include <shardinit/shardinit.hpp>

namespace {

using namespace shardinit;

constexpr std::uint64_t kSeed = 2024;
constexpr double kUnitRoundoff = 0x1p-24;  // binary32

// A parameter as Colossal-AI's Linear1D stores it: weights (out, in).
struct Parameter {
  std::string name;
  Shape shape;
  std::string preset;  // Colossal-AI 1d layout preset (docs/layouts.md)
  init::Initializer initializer;
  init::Fans fans;     // the layer's global in_features / out_features
};

// The whole tensor, and this rank's shard with its box.
struct Filled {
  std::vector<float> whole;
  std::vector<float> shard;
  Box box;
};

Filled fill(const Parameter& p, const TensorParallelConfig& tp, const ProcessMesh& mesh, int rank) {
  const TensorSpec spec{p.name, p.shape, DType::f32, stream_from_name(p.name), p.initializer(p.fans)};
  const TensorLayout layout = colossal_layout(tp, p.preset, p.shape);
  Filled f;
  f.box = local_box(p.shape, layout, mesh, rank);
  f.shard.resize(static_cast<std::size_t>(f.box.element_count()));
  mpi::fill_local(MPI_COMM_WORLD, kSeed, spec, layout, mesh, std::as_writable_bytes(std::span(f.shard)));
  f.whole.resize(static_cast<std::size_t>(element_count(p.shape)));
  fill_flat(kSeed, spec, 0, element_count(p.shape), std::as_writable_bytes(std::span(f.whole)));
  return f;
}

// Whether `shard` is bit for bit box `box` of the row-major 2-D (or 1-D) tensor `whole` of `shape`.
bool is_slice(const Filled& f, const Shape& shape) {
  const Index columns = shape.size() == 2 ? shape[1] : 1;
  const Index box_columns = shape.size() == 2 ? f.box.extent[1] : 1;
  const Index first_column = shape.size() == 2 ? f.box.start[1] : 0;
  for (Index i = 0; i < static_cast<Index>(f.shard.size()); ++i) {
    const Index row = f.box.start[0] + i / box_columns, column = first_column + i % box_columns;
    if (std::memcmp(&f.shard[i], &f.whole[row * columns + column], sizeof(float)) != 0) return false;
  }
  return true;
}

float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }

// The 2D (SUMMA) Linear2D check; returns the number of failures on this rank.
int check_linear_2d(int rank, int world) {
  const int q = static_cast<int>(std::lround(std::sqrt(world)));
  const Index batch = 4 * q, in = 24 * q, out = 16 * q * q;  // out divisible by q^2 (the bias chunks)
  const TensorParallelConfig tp{TensorParallelMode::two_d, world};
  const ProcessMesh mesh = colossal_mesh(tp);
  const std::vector<int> at = mesh.coordinates(rank);
  const int i = at[0], j = at[1];
  const Parameter w{"linear2d.weight", {in, out}, "linear", init::kaiming_uniform_({.a = std::sqrt(5.0)}), {in, out}};
  const Parameter b{"linear2d.bias", {out}, "linear_bias", init::xavier_uniform_({.a = 1.0, .scale = 1.0}), {in, std::nullopt}};
  const Filled W = fill(w, tp, mesh, rank), B = fill(b, tp, mesh, rank);
  std::vector<float> x(static_cast<std::size_t>(batch * in));
  fill_flat(kSeed, {"input2d", {batch, in}, DType::f32, stream_from_name("input2d"), Normal{0.0, 1.0}}, 0, batch * in,
            std::as_writable_bytes(std::span(x)));
  int failures = 0;
  const auto fail = [&](const std::string& what) {
    std::printf("rank %d: FAIL (2d): %s\n", rank, what.c_str());
    ++failures;
  };
  const Index rows = batch / q, inner = in / q, columns = out / q;
  if (W.box.start != Shape{i * inner, j * columns} || W.box.extent != Shape{inner, columns}) fail("weight box is not block [i, j]");
  if (!is_slice(W, w.shape) || !is_slice(B, b.shape)) fail("a shard is not its slice of the whole tensor");

  MPI_Comm row, column;  // ranks (i, *) and (*, j), ordered by the other coordinate
  MPI_Comm_split(MPI_COMM_WORLD, i, j, &row);
  MPI_Comm_split(MPI_COMM_WORLD, j, i, &column);
  // This rank's block X[i, j] of the input, as Colossal-AI's 2D layers distribute activations.
  std::vector<float> x_block(static_cast<std::size_t>(rows * inner));
  for (Index r = 0; r < rows; ++r) {
    for (Index c = 0; c < inner; ++c) x_block[r * inner + c] = x[(i * rows + r) * in + j * inner + c];
  }
  std::vector<float> y(static_cast<std::size_t>(rows * columns), 0.0f), a(x_block.size()), w_k(W.shard.size());
  for (int k = 0; k < q; ++k) {
    a = x_block;
    w_k = W.shard;
    MPI_Bcast(a.data(), static_cast<int>(a.size()), MPI_FLOAT, k, row);       // X[i, k] from rank (i, k)
    MPI_Bcast(w_k.data(), static_cast<int>(w_k.size()), MPI_FLOAT, k, column);  // W[k, j] from rank (k, j)
    for (Index r = 0; r < rows; ++r) {
      for (Index o = 0; o < columns; ++o) {
        float s = y[r * columns + o];
        for (Index h = 0; h < inner; ++h) s += a[r * inner + h] * w_k[h * columns + o];
        y[r * columns + o] = s;
      }
    }
  }
  // The bias: rank (i, j) holds chunk j*q + i of q^2; the column's q chunks make segment j.
  std::vector<float> bias_segment(static_cast<std::size_t>(columns));
  MPI_Allgather(B.shard.data(), static_cast<int>(B.shard.size()), MPI_FLOAT, bias_segment.data(),
                static_cast<int>(B.shard.size()), MPI_FLOAT, column);
  for (Index r = 0; r < rows; ++r) {
    for (Index o = 0; o < columns; ++o) y[r * columns + o] += bias_segment[o];
  }
  MPI_Comm_free(&row);
  MPI_Comm_free(&column);

  // The twin: Y = X W + b from the whole tensors, one sum per element in ascending input order.
  for (Index r = 0; r < rows && failures == 0; ++r) {
    for (Index o = 0; o < columns; ++o) {
      const Index gr = i * rows + r, go = j * columns + o;
      float s = 0.0f;
      for (Index h = 0; h < in; ++h) s += x[gr * in + h] * W.whole[h * out + go];
      s += B.whole[go];
      if (std::memcmp(&s, &y[r * columns + o], sizeof(float)) != 0) {
        fail("output [" + std::to_string(gr) + ", " + std::to_string(go) + "] differs from the twin's");
        break;
      }
    }
  }
  return failures;
}

}  // namespace

int run(int rank, int world);

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  try {
    const int status = run(rank, world);
    MPI_Finalize();
    return status;
  } catch (const shardinit::Error& e) {  // e.g. a rank count that does not divide the layers
    if (rank == 0) std::fprintf(stderr, "tp_mlp: error: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 2;
  }
}

int run(int rank, int world) {

  const Index batch = 8, hidden = 96, ffn = 384;  // ffn divisible by 1, 2, 3, 4, 6, 8
  const TensorParallelConfig tp{TensorParallelMode::one_d, world};
  const ProcessMesh mesh = colossal_mesh(tp);
  const auto weight = init::kaiming_uniform_({.a = std::sqrt(5.0)});
  const auto bias = init::xavier_uniform_({.a = 1.0, .scale = 1.0});
  const Parameter w1{"mlp.fc1.weight", {ffn, hidden}, "linear_col", weight, {hidden, ffn}};
  const Parameter b1{"mlp.fc1.bias", {ffn}, "linear_col_bias", bias, {hidden, std::nullopt}};
  const Parameter w2{"mlp.fc2.weight", {hidden, ffn}, "linear_row", weight, {ffn, hidden}};
  const Parameter b2{"mlp.fc2.bias", {hidden}, "linear_row_bias", bias, {ffn, std::nullopt}};
  const Filled W1 = fill(w1, tp, mesh, rank), B1 = fill(b1, tp, mesh, rank), W2 = fill(w2, tp, mesh, rank),
               B2 = fill(b2, tp, mesh, rank);
  // The input: the same on every rank (Linear1D_Col's input is replicated), from shardinit too.
  std::vector<float> x(static_cast<std::size_t>(batch * hidden));
  fill_flat(kSeed, {"input", {batch, hidden}, DType::f32, stream_from_name("input"), Normal{0.0, 1.0}}, 0, batch * hidden,
            std::as_writable_bytes(std::span(x)));

  int failures = 0;
  const auto fail = [&](const std::string& what) {
    std::printf("rank %d: FAIL: %s\n", rank, what.c_str());
    ++failures;
  };
  for (const auto& [p, f] : {std::pair{&w1, &W1}, std::pair{&b1, &B1}, std::pair{&w2, &W2}, std::pair{&b2, &B2}}) {
    if (!is_slice(*f, p->shape)) fail(p->name + ": the shard is not its slice of the whole tensor");
  }

  // ---- tensor parallel: fc1 on this rank's rows of W1, GeLU, fc2 on its columns of W2, all-reduce.
  const Index local_ffn = W1.box.extent[0], ffn_start = W1.box.start[0];
  std::vector<float> g_local(static_cast<std::size_t>(batch * local_ffn));
  for (Index b = 0; b < batch; ++b) {
    for (Index f = 0; f < local_ffn; ++f) {
      float s = 0.0f;
      for (Index h = 0; h < hidden; ++h) s += x[b * hidden + h] * W1.shard[f * hidden + h];
      g_local[b * local_ffn + f] = gelu(s + B1.shard[f]);
    }
  }
  std::vector<float> z(static_cast<std::size_t>(batch * hidden));
  for (Index b = 0; b < batch; ++b) {
    for (Index h = 0; h < hidden; ++h) {
      float s = 0.0f;
      for (Index f = 0; f < local_ffn; ++f) s += g_local[b * local_ffn + f] * W2.shard[h * local_ffn + f];
      z[b * hidden + h] = s;
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, z.data(), static_cast<int>(z.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  for (Index b = 0; b < batch; ++b) {
    for (Index h = 0; h < hidden; ++h) z[b * hidden + h] += B2.shard[h];
  }

  // ---- the single-process twin, from the whole tensors.
  std::vector<float> g(static_cast<std::size_t>(batch * ffn)), z_single(static_cast<std::size_t>(batch * hidden));
  std::vector<double> magnitude(z_single.size());  // sum_f |g_f w_f|, for the bound
  for (Index b = 0; b < batch; ++b) {
    for (Index f = 0; f < ffn; ++f) {
      float s = 0.0f;
      for (Index h = 0; h < hidden; ++h) s += x[b * hidden + h] * W1.whole[f * hidden + h];
      g[b * ffn + f] = gelu(s + B1.whole[f]);
    }
    for (Index h = 0; h < hidden; ++h) {
      float s = 0.0f;
      double m = 0.0;
      for (Index f = 0; f < ffn; ++f) {
        s += g[b * ffn + f] * W2.whole[h * ffn + f];
        m += std::abs(static_cast<double>(g[b * ffn + f]) * W2.whole[h * ffn + f]);
      }
      z_single[b * hidden + h] = s + B2.whole[h];
      magnitude[b * hidden + h] = m;
    }
  }

  for (Index b = 0; b < batch; ++b) {
    for (Index f = 0; f < local_ffn; ++f) {
      if (std::memcmp(&g_local[b * local_ffn + f], &g[b * ffn + ffn_start + f], sizeof(float)) != 0) {
        fail("hidden activation differs from the twin's at [" + std::to_string(b) + ", " + std::to_string(ffn_start + f) + "]");
        b = batch;
        break;
      }
    }
  }
  const double gamma = ffn * kUnitRoundoff / (1 - ffn * kUnitRoundoff);
  double max_difference = 0.0, max_ratio = 0.0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double difference = std::abs(static_cast<double>(z[i]) - z_single[i]);
    const double bound = 2 * gamma * magnitude[i] + 2 * kUnitRoundoff * std::abs(static_cast<double>(z_single[i]));
    max_difference = std::max(max_difference, difference);
    max_ratio = std::max(max_ratio, difference / bound);
    if (difference > bound) fail("output " + std::to_string(i) + " differs by " + std::to_string(difference) + " > bound " + std::to_string(bound));
  }
  if (world == 1 && max_difference != 0.0) fail("one rank must give exactly the twin's output");

  const int q = static_cast<int>(std::lround(std::sqrt(world)));
  const bool square = world > 1 && q * q == world;
  if (square) failures += check_linear_2d(rank, world);

  int all_failures = 0;
  MPI_Allreduce(&failures, &all_failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &max_difference, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &max_ratio, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) {
    std::printf("tp_mlp: %d rank(s), batch %lld, hidden %lld, ffn %lld: shards are slices of the whole, hidden activations "
                "bit-identical, output max |parallel - single| = %.3g (%.3g of the bound 2 gamma_F sum|g w| + 2u|z|): %s\n",
                world, static_cast<long long>(batch), static_cast<long long>(hidden), static_cast<long long>(ffn),
                max_difference, max_ratio, all_failures == 0 ? "OK" : "FAILED");
    if (square) {
      std::printf("tp_mlp: 2D Linear2D (SUMMA, q = %d): every rank's output block %s the single-process output\n", q,
                  all_failures == 0 ? "is bit for bit" : "is NOT");
    }
  }
  return all_failures == 0 ? 0 : 1;
}
