// Colossal-AI's 1d / 2d / 2.5d / 3d tensor parallelism: for every tensor-parallel rank t, the box that
// colossal_layout + local_box give equals the block Colossal-AI's layer holds on t, written here
// directly from the rules of docs/layouts.md (not from the presets' dim_partition_dicts).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "shardinit/error.hpp"
#include "shardinit/layout/colossal_presets.hpp"
#include "shardinit/layout/mesh.hpp"

namespace shardinit {
namespace {

using ::testing::HasSubstr;
using Mode = TensorParallelMode;

// Chunk `index` of `parts` equal chunks of a dimension of n (n divisible by parts).
struct Range {
  Index start;
  Index extent;
};
Range chunk(Index n, Index parts, Index index) { return {index * (n / parts), n / parts}; }
Range whole(Index n) { return {0, n}; }

Box box_of(std::initializer_list<Range> ranges) {
  Box box;
  for (const Range& r : ranges) {
    box.start.push_back(r.start);
    box.extent.push_back(r.extent);
  }
  return box;
}

// What one preset must give: shape, and rank t -> expected box.
struct Expectation {
  std::string_view name;
  Shape shape;
  std::function<Box(int t)> box;
};

void check_presets(const TensorParallelConfig& config, const std::vector<Expectation>& expectations) {
  const std::string where = std::string(tensor_parallel_mode_name(config.mode)) + " size " +
                            std::to_string(config.size) + " depth " + std::to_string(config.depth);
  const ProcessMesh mesh = colossal_mesh(config);
  ASSERT_EQ(mesh.size(), config.size) << where;
  for (const Expectation& e : expectations) {
    const TensorLayout layout = colossal_layout(config, e.name, e.shape);
    ASSERT_NO_THROW(check_layout(layout, e.shape.size(), mesh)) << where << " " << e.name;
    for (int t = 0; t < config.size; ++t) {
      const Box got = local_box(e.shape, layout, mesh, t);
      const Box expected = e.box(t);
      EXPECT_EQ(got.start, expected.start) << where << " preset " << e.name << " shape " << shape_to_string(e.shape)
                                           << " rank " << t << ": got " << got.to_string() << ", expected "
                                           << expected.to_string();
      EXPECT_EQ(got.extent, expected.extent) << where << " preset " << e.name << " rank " << t;
    }
  }
}

// Every mode has exactly these presets (and "replicate").
std::vector<std::string_view> expected_names(Mode mode) {
  switch (mode) {
    case Mode::one_d:
      return {"linear_col", "linear_col_bias", "linear_row", "linear_row_bias", "vocab_embedding", "embedding",
              "classifier", "classifier_bias", "vocab_classifier", "vocab_classifier_bias"};
    case Mode::two_d:
    case Mode::two_p5_d:
      return {"linear", "linear_bias", "layernorm", "embedding", "vocab_embedding", "classifier", "classifier_bias",
              "vocab_classifier", "vocab_classifier_bias", "patch_embedding", "patch_embedding_bias", "cls_token", "pos_embed"};
    case Mode::three_d:
      return {"linear", "linear_bias", "layernorm", "linear_swapped", "linear_bias_swapped", "layernorm_swapped",
              "embedding", "vocab_embedding", "classifier", "classifier_bias", "vocab_classifier", "vocab_classifier_bias",
              "patch_embedding", "patch_embedding_bias", "cls_token", "pos_embed"};
  }
  return {};
}

constexpr Mode kModes[] = {Mode::one_d, Mode::two_d, Mode::two_p5_d, Mode::three_d};

TEST(ColossalPresets, PresetNames) {
  for (const Mode mode : kModes) {
    std::vector<std::string_view> expected = expected_names(mode);
    expected.push_back("replicate");
    std::vector<std::string_view> got = colossal_preset_names(mode);
    std::sort(expected.begin(), expected.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected) << tensor_parallel_mode_name(mode);
  }
}

TEST(ColossalPresets, ModeNames) {
  for (const Mode mode : kModes) EXPECT_EQ(parse_tensor_parallel_mode(tensor_parallel_mode_name(mode)), mode);
  EXPECT_EQ(tensor_parallel_mode_name(Mode::one_d), "1d");
  EXPECT_EQ(tensor_parallel_mode_name(Mode::two_d), "2d");
  EXPECT_EQ(tensor_parallel_mode_name(Mode::two_p5_d), "2.5d");
  EXPECT_EQ(tensor_parallel_mode_name(Mode::three_d), "3d");
  for (const char* bad : {"4d", "2p5d", "", "1D", "3d "}) {
    try {
      (void)parse_tensor_parallel_mode(bad);
      ADD_FAILURE() << "no error for mode \"" << bad << "\"";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
      EXPECT_THAT(std::string(e.what()), HasSubstr("\"" + std::string(bad) + "\""));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 1d: mesh [P], t.

TEST(ColossalPresets, OneD) {
  for (int P = 1; P <= 6; ++P) {
    const Index out = 2 * P, in = 3 * P;
    // Dimensions that are not split need not divide.
    const Index odd = 7;
    check_presets({Mode::one_d, P, 1},
                  {
                      // Linear1D_Col.weight (out, in): row chunk t.
                      {"linear_col", {out, in}, [&](int t) { return box_of({chunk(out, P, t), whole(in)}); }},
                      {"linear_col", {out, odd}, [&](int t) { return box_of({chunk(out, P, t), whole(odd)}); }},
                      // Linear1D_Col.bias: chunk t.
                      {"linear_col_bias", {out}, [&](int t) { return box_of({chunk(out, P, t)}); }},
                      // Linear1D_Row.weight (out, in): column chunk t.
                      {"linear_row", {out, in}, [&](int t) { return box_of({whole(out), chunk(in, P, t)}); }},
                      {"linear_row", {odd, in}, [&](int t) { return box_of({whole(odd), chunk(in, P, t)}); }},
                      // Linear1D_Row.bias: whole on every rank.
                      {"linear_row_bias", {odd}, [&](int) { return box_of({whole(odd)}); }},
                      // VocabParallelEmbedding1D.weight (V, E): row chunk t.
                      {"vocab_embedding", {5 * Index{P}, odd},
                       [&](int t) { return box_of({chunk(5 * Index{P}, P, t), whole(odd)}); }},
                      // Embedding1D.weight (V, E): column chunk t.
                      {"embedding", {odd, 4 * Index{P}},
                       [&](int t) { return box_of({whole(odd), chunk(4 * Index{P}, P, t)}); }},
                      // Classifier1D.weight (C, in): column chunk t; its bias whole.
                      {"classifier", {odd, in}, [&](int t) { return box_of({whole(odd), chunk(in, P, t)}); }},
                      {"classifier_bias", {odd}, [&](int) { return box_of({whole(odd)}); }},
                      // VocabParallelClassifier1D.weight (C, in): row chunk t; its bias chunk t.
                      {"vocab_classifier", {out, odd}, [&](int t) { return box_of({chunk(out, P, t), whole(odd)}); }},
                      {"vocab_classifier_bias", {out}, [&](int t) { return box_of({chunk(out, P, t)}); }},
                      {"replicate", {odd, 3}, [&](int) { return box_of({whole(odd), whole(3)}); }},
                  });
  }
}

// ---------------------------------------------------------------------------------------------
// 2d: mesh [q, q], t = i*q + j.

TEST(ColossalPresets, TwoD) {
  for (int q = 1; q <= 3; ++q) {
    const int P = q * q;
    const Index in = 2 * q, out = 3 * q, h = 2 * q * q, bias = 5 * q * q;
    const auto i_of = [q](int t) { return t / q; };
    const auto j_of = [q](int t) { return t % q; };
    const ProcessMesh mesh = colossal_mesh({Mode::two_d, P, 1});
    EXPECT_EQ(mesh.shape(), (std::vector<int>{q, q}));
    for (int t = 0; t < P; ++t) EXPECT_EQ(mesh.coordinates(t), (std::vector<int>{i_of(t), j_of(t)}));
    check_presets({Mode::two_d, P, 1},
                  {
                      // Linear2D.weight (in, out): block [i, j].
                      {"linear", {in, out},
                       [&](int t) { return box_of({chunk(in, q, i_of(t)), chunk(out, q, j_of(t))}); }},
                      // Linear2D.bias (out,): chunk j*q + i of q^2.
                      {"linear_bias", {bias},
                       [&](int t) { return box_of({chunk(bias, Index{q} * q, j_of(t) * q + i_of(t))}); }},
                      // LayerNorm2D (H,): chunk j*q + i of q^2.
                      {"layernorm", {h}, [&](int t) { return box_of({chunk(h, Index{q} * q, j_of(t) * q + i_of(t))}); }},
                      // The row group's local rank is j, the column group's i (initializer_2d.py); a
                      // chunk "of q^2" is cut by the row group first, then the column group.
                      // Embedding2D.weight (V, E): columns chunk j*q + i of q^2; Classifier2D.weight (C, in) alike.
                      {"embedding", {7, h}, [&](int t) { return box_of({whole(7), chunk(h, Index{q} * q, j_of(t) * q + i_of(t))}); }},
                      {"classifier", {7, h}, [&](int t) { return box_of({whole(7), chunk(h, Index{q} * q, j_of(t) * q + i_of(t))}); }},
                      {"classifier_bias", {7}, [&](int) { return box_of({whole(7)}); }},
                      // VocabParallelEmbedding2D.weight (V, E) and VocabParallelClassifier2D.weight (C, in): block [i, j].
                      {"vocab_embedding", {in, out}, [&](int t) { return box_of({chunk(in, q, i_of(t)), chunk(out, q, j_of(t))}); }},
                      {"vocab_classifier", {in, out}, [&](int t) { return box_of({chunk(in, q, i_of(t)), chunk(out, q, j_of(t))}); }},
                      {"vocab_classifier_bias", {h}, [&](int t) { return box_of({chunk(h, Index{q} * q, j_of(t) * q + i_of(t))}); }},
                      // PatchEmbedding2D: the embedding dimension chunk j*q + i of q^2.
                      {"patch_embedding", {h, 3, 2, 2},
                       [&](int t) { return box_of({chunk(h, Index{q} * q, j_of(t) * q + i_of(t)), whole(3), whole(2), whole(2)}); }},
                      {"patch_embedding_bias", {h}, [&](int t) { return box_of({chunk(h, Index{q} * q, j_of(t) * q + i_of(t))}); }},
                      {"cls_token", {1, 1, h}, [&](int t) { return box_of({whole(1), whole(1), chunk(h, Index{q} * q, j_of(t) * q + i_of(t))}); }},
                      {"pos_embed", {1, 5, h}, [&](int t) { return box_of({whole(1), whole(5), chunk(h, Index{q} * q, j_of(t) * q + i_of(t))}); }},
                      {"replicate", {in, out, 3}, [&](int) { return box_of({whole(in), whole(out), whole(3)}); }},
                  });
  }
}

// The picture of docs/layouts.md: q = 2, bias (4,) is [0 2 | 1 3] (element e on the rank with
// j = e div 2, i = e mod 2).
TEST(ColossalPresets, TwoDBiasPicture) {
  const TensorParallelConfig config{Mode::two_d, 4, 1};
  const ProcessMesh mesh = colossal_mesh(config);
  const TensorLayout layout = colossal_layout(config, "linear_bias", {4});
  const std::vector<int> holder = {0, 2, 1, 3};
  for (Index e = 0; e < 4; ++e) EXPECT_EQ(owners({4}, layout, mesh, {e}), (std::vector<int>{holder[e]})) << e;
}

// ---------------------------------------------------------------------------------------------
// 2.5d: mesh [d, q, q], t = i + q*(j + q*k).

TEST(ColossalPresets, TwoPointFiveD) {
  for (int q = 1; q <= 3; ++q) {
    for (int depth = 1; depth <= 3; ++depth) {
      const int P = q * q * depth;
      const Index in = 2 * q, out = 3 * q, h = 4 * q, qq = 2 * Index{q} * q;
      const auto i_of = [q](int t) { return t % q; };
      const auto j_of = [q](int t) { return (t / q) % q; };
      const auto k_of = [q](int t) { return t / (q * q); };
      const ProcessMesh mesh = colossal_mesh({Mode::two_p5_d, P, depth});
      EXPECT_EQ(mesh.shape(), (std::vector<int>{depth, q, q}));
      for (int t = 0; t < P; ++t) {
        EXPECT_EQ(t, i_of(t) + q * (j_of(t) + q * k_of(t)));
        EXPECT_EQ(mesh.coordinates(t), (std::vector<int>{k_of(t), j_of(t), i_of(t)}));
      }
      check_presets({Mode::two_p5_d, P, depth},
                    {
                        // Linear2p5D.weight (in, out): block [j, i], the same at every depth k.
                        {"linear", {in, out},
                         [&](int t) { return box_of({chunk(in, q, j_of(t)), chunk(out, q, i_of(t))}); }},
                        // Linear2p5D.bias (out,): chunk i of q.
                        {"linear_bias", {out}, [&](int t) { return box_of({chunk(out, q, i_of(t))}); }},
                        // LayerNorm2p5D (H,): chunk i of q.
                        {"layernorm", {h}, [&](int t) { return box_of({chunk(h, q, i_of(t))}); }},
                        // Row group: i, column group: j (initializer_2p5d.py); "of q^2" cut by the row
                        // group first: chunk i*q + j. Every depth k holds the same.
                        {"embedding", {7, qq}, [&](int t) { return box_of({whole(7), chunk(qq, Index{q} * q, i_of(t) * q + j_of(t))}); }},
                        {"classifier", {7, qq}, [&](int t) { return box_of({whole(7), chunk(qq, Index{q} * q, i_of(t) * q + j_of(t))}); }},
                        {"classifier_bias", {7}, [&](int) { return box_of({whole(7)}); }},
                        {"vocab_embedding", {in, out}, [&](int t) { return box_of({chunk(in, q, j_of(t)), chunk(out, q, i_of(t))}); }},
                        {"vocab_classifier", {in, out}, [&](int t) { return box_of({chunk(in, q, j_of(t)), chunk(out, q, i_of(t))}); }},
                        {"vocab_classifier_bias", {out}, [&](int t) { return box_of({chunk(out, q, i_of(t))}); }},
                        {"patch_embedding", {qq, 3, 2, 2},
                         [&](int t) { return box_of({chunk(qq, Index{q} * q, i_of(t) * q + j_of(t)), whole(3), whole(2), whole(2)}); }},
                        {"patch_embedding_bias", {qq}, [&](int t) { return box_of({chunk(qq, Index{q} * q, i_of(t) * q + j_of(t))}); }},
                        {"cls_token", {1, 1, qq}, [&](int t) { return box_of({whole(1), whole(1), chunk(qq, Index{q} * q, i_of(t) * q + j_of(t))}); }},
                        {"pos_embed", {1, 5, qq}, [&](int t) { return box_of({whole(1), whole(5), chunk(qq, Index{q} * q, i_of(t) * q + j_of(t))}); }},
                        {"replicate", {5}, [&](int) { return box_of({whole(5)}); }},
                    });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 3d: mesh [p, p, p], t = i + p*(j + p*k).

TEST(ColossalPresets, ThreeD) {
  for (int p = 1; p <= 3; ++p) {
    const int P = p * p * p;
    const Index pp = Index{p} * p;
    const Index in = 2 * pp, out = 3 * p, h = 5 * p;
    const auto i_of = [p](int t) { return t % p; };
    const auto j_of = [p](int t) { return (t / p) % p; };
    const auto k_of = [p](int t) { return t / (p * p); };
    const ProcessMesh mesh = colossal_mesh({Mode::three_d, P, 1});
    EXPECT_EQ(mesh.shape(), (std::vector<int>{p, p, p}));
    for (int t = 0; t < P; ++t) EXPECT_EQ(mesh.coordinates(t), (std::vector<int>{k_of(t), j_of(t), i_of(t)}));
    check_presets(
        {Mode::three_d, P, 1},
        {
            // Linear3D.weight (in, out): row chunk k*p + i of p^2, column chunk j of p.
            {"linear", {in, out},
             [&](int t) { return box_of({chunk(in, pp, k_of(t) * p + i_of(t)), chunk(out, p, j_of(t))}); }},
            // Linear3D.bias (out,): chunk j of p.
            {"linear_bias", {out}, [&](int t) { return box_of({chunk(out, p, j_of(t))}); }},
            // LayerNorm3D (H,): chunk k of p.
            {"layernorm", {h}, [&](int t) { return box_of({chunk(h, p, k_of(t))}); }},
            // After a swap: row chunk j*p + i, column chunk k; bias chunk k; LayerNorm chunk j.
            {"linear_swapped", {in, out},
             [&](int t) { return box_of({chunk(in, pp, j_of(t) * p + i_of(t)), chunk(out, p, k_of(t))}); }},
            {"linear_bias_swapped", {out}, [&](int t) { return box_of({chunk(out, p, k_of(t))}); }},
            {"layernorm_swapped", {h}, [&](int t) { return box_of({chunk(h, p, j_of(t))}); }},
            // Output group: k, input group: j, weight group: i (initializer_3d.py).
            // Embedding3D.weight (V, E) and Classifier3D.weight (C, in): columns chunk k; bias whole.
            {"embedding", {7, h}, [&](int t) { return box_of({whole(7), chunk(h, p, k_of(t))}); }},
            {"classifier", {7, h}, [&](int t) { return box_of({whole(7), chunk(h, p, k_of(t))}); }},
            {"classifier_bias", {7}, [&](int) { return box_of({whole(7)}); }},
            // VocabParallelEmbedding3D / VocabParallelClassifier3D (rows, cols): row chunk j*p + i of p^2, column chunk k.
            {"vocab_embedding", {in, out}, [&](int t) { return box_of({chunk(in, pp, j_of(t) * p + i_of(t)), chunk(out, p, k_of(t))}); }},
            {"vocab_classifier", {in, out}, [&](int t) { return box_of({chunk(in, pp, j_of(t) * p + i_of(t)), chunk(out, p, k_of(t))}); }},
            {"vocab_classifier_bias", {h}, [&](int t) { return box_of({chunk(h, p, j_of(t))}); }},
            // PatchEmbedding3D: the embedding dimension chunk k.
            {"patch_embedding", {h, 3, 2, 2}, [&](int t) { return box_of({chunk(h, p, k_of(t)), whole(3), whole(2), whole(2)}); }},
            {"patch_embedding_bias", {h}, [&](int t) { return box_of({chunk(h, p, k_of(t))}); }},
            {"cls_token", {1, 1, h}, [&](int t) { return box_of({whole(1), whole(1), chunk(h, p, k_of(t))}); }},
            {"pos_embed", {1, 5, h}, [&](int t) { return box_of({whole(1), whole(5), chunk(h, p, k_of(t))}); }},
            {"replicate", {}, [&](int) { return box_of({}); }},
        });
  }
}

// ---------------------------------------------------------------------------------------------
// colossal_mesh

TEST(ColossalMesh, Shapes) {
  EXPECT_EQ(colossal_mesh({Mode::one_d, 7, 1}).shape(), (std::vector<int>{7}));
  EXPECT_EQ(colossal_mesh({Mode::two_d, 1, 1}).shape(), (std::vector<int>{1, 1}));
  EXPECT_EQ(colossal_mesh({Mode::two_d, 16, 1}).shape(), (std::vector<int>{4, 4}));
  EXPECT_EQ(colossal_mesh({Mode::two_d, 4096, 1}).shape(), (std::vector<int>{64, 64}));
  EXPECT_EQ(colossal_mesh({Mode::two_p5_d, 8, 2}).shape(), (std::vector<int>{2, 2, 2}));
  EXPECT_EQ(colossal_mesh({Mode::two_p5_d, 18, 2}).shape(), (std::vector<int>{2, 3, 3}));
  EXPECT_EQ(colossal_mesh({Mode::two_p5_d, 4, 4}).shape(), (std::vector<int>{4, 1, 1}));
  EXPECT_EQ(colossal_mesh({Mode::three_d, 1, 1}).shape(), (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(colossal_mesh({Mode::three_d, 64, 1}).shape(), (std::vector<int>{4, 4, 4}));
  EXPECT_EQ(colossal_mesh({Mode::three_d, 1000000, 1}).shape(), (std::vector<int>{100, 100, 100}));
  // Every square / cube, where pow() rounding could be off by one.
  for (int r = 1; r <= 1000; ++r) {
    EXPECT_EQ(colossal_mesh({Mode::two_d, r * r, 1}).shape(), (std::vector<int>{r, r})) << r;
    EXPECT_EQ(colossal_mesh({Mode::three_d, r * r * r, 1}).shape(), (std::vector<int>{r, r, r})) << r;
  }
}

void expect_mesh_error(const TensorParallelConfig& config, const std::vector<std::string>& parts) {
  try {
    const ProcessMesh mesh = colossal_mesh(config);
    ADD_FAILURE() << "no error for " << tensor_parallel_mode_name(config.mode) << " size " << config.size << " depth "
                  << config.depth << " (mesh " << mesh.to_string() << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << e.what();
    for (const auto& p : parts) EXPECT_THAT(std::string(e.what()), HasSubstr(p));
  }
}

TEST(ColossalMesh, Errors) {
  // 2d: not a square.
  for (const int size : {2, 3, 5, 8, 15, 17, 99}) expect_mesh_error({Mode::two_d, size, 1}, {"square", std::to_string(size)});
  // 3d: not a cube.
  for (const int size : {2, 4, 9, 16, 26, 28, 63, 65}) expect_mesh_error({Mode::three_d, size, 1}, {"cub", std::to_string(size)});
  // 2.5d: size not q^2 * depth.
  expect_mesh_error({Mode::two_p5_d, 8, 3}, {"8", "3"});    // not a multiple of the depth
  expect_mesh_error({Mode::two_p5_d, 12, 2}, {"12", "2"});  // 6 is not a square
  expect_mesh_error({Mode::two_p5_d, 8, 1}, {"8"});
  // size / depth rounded down would be a square: 9 / 2 = 4, 17 / 4 = 4, 19 / 2 = 9.
  expect_mesh_error({Mode::two_p5_d, 9, 2}, {"9", "2"});
  expect_mesh_error({Mode::two_p5_d, 17, 4}, {"17", "4"});
  expect_mesh_error({Mode::two_p5_d, 19, 2}, {"19", "2"});
  expect_mesh_error({Mode::two_p5_d, 4, 0}, {"depth 0"});
  // depth with another mode.
  expect_mesh_error({Mode::one_d, 4, 2}, {"depth 2", "2.5d", "1d"});
  expect_mesh_error({Mode::two_d, 4, 2}, {"depth 2", "2d"});
  expect_mesh_error({Mode::three_d, 8, 2}, {"depth 2", "3d"});
  // size < 1.
  for (const Mode mode : kModes) expect_mesh_error({mode, 0, 1}, {"0"});
  expect_mesh_error({Mode::one_d, -3, 1}, {"-3"});
}

// ---------------------------------------------------------------------------------------------
// colossal_layout errors

void expect_layout_error(const TensorParallelConfig& config, std::string_view name, const Shape& shape,
                         const std::vector<std::string>& parts) {
  try {
    const TensorLayout layout = colossal_layout(config, name, shape);
    ADD_FAILURE() << "no error for preset " << name << " shape " << shape_to_string(shape) << " (got "
                  << layout.to_string() << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << e.what();
    for (const auto& p : parts) EXPECT_THAT(std::string(e.what()), HasSubstr(p)) << name;
  }
}

TEST(ColossalLayout, UnknownNameListsTheValidOnes) {
  for (const Mode mode : kModes) {
    const TensorParallelConfig config{mode, mode == Mode::one_d ? 2 : mode == Mode::three_d ? 8 : 4, 1};
    std::vector<std::string> parts = {"\"bogus\"", std::string(tensor_parallel_mode_name(mode)), "replicate"};
    for (const auto n : expected_names(mode)) parts.emplace_back(n);
    expect_layout_error(config, "bogus", {4, 4}, parts);
    // A name of another mode is unknown here.
    for (const Mode other : kModes) {
      for (const auto n : expected_names(other)) {
        const auto mine = expected_names(mode);
        if (std::find(mine.begin(), mine.end(), n) == mine.end()) {
          expect_layout_error(config, n, {72, 72}, {"\"" + std::string(n) + "\"", "expected one of"});
        }
      }
    }
  }
}

TEST(ColossalLayout, WrongTensorRank) {
  expect_layout_error({Mode::one_d, 2, 1}, "linear_col", {4}, {"linear_col", "2-D", "[4]"});
  expect_layout_error({Mode::one_d, 2, 1}, "linear_col_bias", {4, 4}, {"1-D", "[4, 4]"});
  expect_layout_error({Mode::two_d, 4, 1}, "linear", {4, 4, 4}, {"2-D", "[4, 4, 4]"});
  expect_layout_error({Mode::two_d, 4, 1}, "layernorm", {}, {"1-D", "[]"});
  expect_layout_error({Mode::two_p5_d, 8, 2}, "linear_bias", {4, 4}, {"1-D"});
  expect_layout_error({Mode::three_d, 8, 1}, "linear_swapped", {16}, {"2-D", "[16]"});
  // "replicate" takes any rank.
  for (const Mode mode : kModes) {
    const TensorParallelConfig config{mode, 1, 1};
    EXPECT_EQ(colossal_layout(config, "replicate", {}), TensorLayout::replicated(0));
    EXPECT_EQ(colossal_layout(config, "replicate", {3, 5, 7}), TensorLayout::replicated(3));
  }
}

TEST(ColossalLayout, IndivisibleDimensions) {
  const std::string requires_it = "Colossal-AI requires";
  expect_layout_error({Mode::one_d, 2, 1}, "linear_col", {5, 4}, {requires_it, "dimension 0", "[5, 4]", "2 parts"});
  expect_layout_error({Mode::one_d, 3, 1}, "linear_row", {3, 4}, {requires_it, "dimension 1"});
  expect_layout_error({Mode::one_d, 4, 1}, "embedding", {10, 6}, {requires_it, "dimension 1"});
  expect_layout_error({Mode::two_d, 4, 1}, "linear_bias", {6}, {requires_it, "4 parts"});  // q, not q^2
  expect_layout_error({Mode::two_d, 9, 1}, "linear", {6, 4}, {requires_it, "dimension 1", "3 parts"});
  expect_layout_error({Mode::two_p5_d, 8, 2}, "linear", {3, 4}, {requires_it, "dimension 0"});
  expect_layout_error({Mode::three_d, 8, 1}, "linear", {2, 2}, {requires_it, "dimension 0", "4 parts"});  // p, not p^2
  expect_layout_error({Mode::three_d, 8, 1}, "layernorm_swapped", {3}, {requires_it});
  // Dimensions that are not split need not divide; zero divides.
  EXPECT_NO_THROW((void)colossal_layout({Mode::one_d, 4, 1}, "linear_col", {8, 7}));
  EXPECT_NO_THROW((void)colossal_layout({Mode::one_d, 4, 1}, "linear_row_bias", {7}));
  EXPECT_NO_THROW((void)colossal_layout({Mode::two_d, 4, 1}, "linear", {0, 0}));
  // An impossible mesh is reported before the preset.
  expect_layout_error({Mode::two_d, 3, 1}, "linear", {6, 6}, {"square"});
}

// ---------------------------------------------------------------------------------------------
// colossal_fan_convention

TEST(ColossalLayout, FanConventionsOfTheLayers) {
  std::set<std::string_view> every_name = {"replicate", "bogus", ""};
  for (const Mode mode : kModes) {
    for (const auto n : expected_names(mode)) every_name.insert(n);
  }
  // (in, out) Linear weights and every embedding read fan_in = shape[0]; PatchEmbedding weights
  // fan_out = embed_size; everything else as PyTorch.
  const std::set<std::pair<Mode, std::string_view>> in_out = {
      {Mode::two_d, "linear"},          {Mode::two_p5_d, "linear"},          {Mode::three_d, "linear"},
      {Mode::three_d, "linear_swapped"}, {Mode::one_d, "embedding"},         {Mode::one_d, "vocab_embedding"},
      {Mode::two_d, "embedding"},       {Mode::two_d, "vocab_embedding"},    {Mode::two_p5_d, "embedding"},
      {Mode::two_p5_d, "vocab_embedding"}, {Mode::three_d, "embedding"},     {Mode::three_d, "vocab_embedding"}};
  for (const Mode mode : kModes) {
    for (const auto n : every_name) {
      const init::FanConvention expected = in_out.contains({mode, n})                          ? init::FanConvention::in_out
                                           : mode != Mode::one_d && n == "patch_embedding" ? init::FanConvention::patch
                                                                                              : init::FanConvention::torch;
      EXPECT_EQ(colossal_fan_convention(mode, n), expected) << tensor_parallel_mode_name(mode) << " " << n;
    }
  }
}

}  // namespace
}  // namespace shardinit
