// Unit tests for the network building blocks (engine/nn_ops) on small hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "engine/nn_ops.h"

namespace df::engine {
namespace {

at::Tensor values(std::vector<float> data, at::IntArrayRef shape) {
  return at::tensor(data, at::kFloat).reshape(shape);
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected, double tol = 1e-5) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(actual, expected, 0.0, tol))
      << "actual:\n" << actual << "\nexpected:\n" << expected;
}

TEST(NnOps, LinearUsesBiasOnlyWhenPresent) {
  const at::Tensor x = values({1, 2}, {1, 2});
  const at::Tensor weight = values({1, 0, 2, 3, -1, 1}, {3, 2});
  expect_close(nn::linear(Weights({{"weight", weight}}), x), values({1, 8, 1}, {1, 3}));
  expect_close(nn::linear(Weights({{"weight", weight}, {"bias", values({10, 20, 30}, {3})}}), x),
               values({11, 28, 31}, {1, 3}));
}

TEST(NnOps, LinearReadsNamedSubmodule) {
  const Weights w({{"to_q.weight", values({2}, {1, 1})}});
  expect_close(nn::linear(w.sub("to_q"), values({3}, {1, 1})), values({6}, {1, 1}));
}

TEST(NnOps, GroupNormNormalizesEachGroup) {
  // Two groups of two channels, one pixel: group (1, 3) -> (-1, 1), group (5, 5) -> (0, 0).
  const Weights w({{"weight", values({1, 1, 2, 1}, {4})}, {"bias", values({0, 0, 0, 0.5}, {4})}});
  const at::Tensor out = nn::group_norm(w, values({1, 3, 5, 5}, {1, 4, 1, 1}), 2, 1e-6);
  expect_close(out, values({-1, 1, 0, 0.5}, {1, 4, 1, 1}));
}

TEST(NnOps, LayerNormUsesLastDimension) {
  const Weights w({{"weight", values({2, 2}, {2})}, {"bias", values({1, 0}, {2})}});
  expect_close(nn::layer_norm(w, values({0, 2, 4, 4}, {2, 2}), 1e-6),
               values({-1, 2, 1, 0}, {2, 2}));
}

TEST(NnOps, RmsNormScalesByRootMeanSquareOfLastDimension) {
  // (3, 4): mean square 12.5, so x / sqrt(12.5) times the weight (1, 2).
  const Weights w({{"weight", values({1, 2}, {2})}});
  const double rms = std::sqrt(12.5);
  expect_close(nn::rms_norm(w, values({3, 4}, {1, 2}), 0.0),
               values({static_cast<float>(3 / rms), static_cast<float>(8 / rms)}, {1, 2}));
  EXPECT_EQ(nn::rms_norm(w, values({3, 4}, {1, 2}).to(at::kBFloat16), 1e-6).scalar_type(),
            at::kFloat);  // the float32 weight promotes, as diffusers' RMSNorm does
}

TEST(NnOps, QuickGeluAndSiluMatchFormulas) {
  const at::Tensor x = values({-1, 0, 2}, {3});
  std::vector<float> quick, silu;
  for (float v : {-1.f, 0.f, 2.f}) {
    quick.push_back(v / (1 + std::exp(-1.702f * v)));
    silu.push_back(v / (1 + std::exp(-v)));
  }
  expect_close(nn::quick_gelu(x), values(quick, {3}));
  expect_close(nn::silu_in_place(x.clone()), values(silu, {3}));
}

TEST(NnOps, AttentionWithOneKeyReturnsItsValue) {
  const at::Tensor q = values({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 4});
  const at::Tensor k = values({1, -1, 2, 0}, {1, 1, 4});
  const at::Tensor v = values({9, 8, 7, 6}, {1, 1, 4});
  expect_close(nn::attention(q, k, v, 2, false), values({9, 8, 7, 6, 9, 8, 7, 6}, {1, 2, 4}));
}

TEST(NnOps, AttentionSplitsHeadsAndScales) {
  // Two heads of dim 1; keys (0, ln 2·√1) make head 0 weigh its values 1:2, head 1 uniform.
  const double ln2 = std::log(2.0);
  const at::Tensor q = values({1, 0}, {1, 1, 2});
  const at::Tensor k = values({0, 5, static_cast<float>(ln2), 5}, {1, 2, 2});
  const at::Tensor v = values({3, 10, 6, 20}, {1, 2, 2});
  expect_close(nn::attention(q, k, v, 2, false), values({5, 15}, {1, 1, 2}));
}

TEST(NnOps, CausalAttentionIgnoresLaterPositions) {
  const at::Tensor q = at::zeros({1, 3, 2});
  const at::Tensor k = at::zeros({1, 3, 2});
  const at::Tensor v = values({3, 0, 5, 2, 7, 4}, {1, 3, 2});
  // Equal scores: position i averages the values of positions 0..i.
  expect_close(nn::attention(q, k, v, 1, true), values({3, 0, 4, 1, 5, 2}, {1, 3, 2}));
}

TEST(NnOps, AttentionBlockProjectsQueriesFromXAndKeysFromContext) {
  const Weights w({{"to_q.weight", values({1}, {1, 1})},
                   {"to_k.weight", values({1}, {1, 1})},
                   {"to_v.weight", values({2}, {1, 1})},
                   {"to_out.0.weight", values({1}, {1, 1})},
                   {"to_out.0.bias", values({0.5}, {1})}});
  const at::Tensor context = values({4}, {1, 1, 1});
  expect_close(nn::attention_block(w, values({1, 2}, {1, 2, 1}), context, 1),
               values({8.5, 8.5}, {1, 2, 1}));
}

TEST(NnOps, GegluGatesTheFirstHalfWithGeluOfTheSecond) {
  // proj maps x to (value, gate) = (x, x + 1); net.2 doubles.
  const Weights w({{"net.0.proj.weight", values({1, 1}, {2, 1})},
                   {"net.0.proj.bias", values({0, 1}, {2})},
                   {"net.2.weight", values({2}, {1, 1})}});
  const double x = 0.5, gate = 1.5;
  const double gelu = 0.5 * gate * (1 + std::erf(gate / std::sqrt(2.0)));
  expect_close(nn::geglu_feed_forward(w, values({0.5}, {1, 1})),
               values({static_cast<float>(2 * x * gelu)}, {1, 1}));
}

// A resnet whose convolutions are zero except their biases: the residual path is a per-channel
// constant, so the output is shortcut(x) + conv2 bias.
TensorMap constant_resnet(int64_t in, int64_t out) {
  return {{"norm1.weight", at::ones({in})},         {"norm1.bias", at::zeros({in})},
          {"conv1.weight", at::zeros({out, in, 3, 3})}, {"conv1.bias", at::ones({out})},
          {"norm2.weight", at::ones({out})},        {"norm2.bias", at::zeros({out})},
          {"conv2.weight", at::zeros({out, out, 3, 3})}, {"conv2.bias", at::full({out}, 0.25)}};
}

TEST(NnOps, ResnetBlockAddsIdentityShortcut) {
  const at::Tensor x = at::arange(8, at::kFloat).reshape({1, 2, 2, 2});
  const at::Tensor out = nn::resnet_block(Weights(constant_resnet(2, 2)), x, at::Tensor(), 1, 1e-6);
  expect_close(out, x + 0.25);
}

TEST(NnOps, ResnetBlockUsesConvShortcutAndTimeEmbedding) {
  TensorMap tensors = constant_resnet(1, 2);
  tensors["conv_shortcut.weight"] = values({2, -1}, {2, 1, 1, 1});
  tensors["conv_shortcut.bias"] = values({0, 1}, {2});
  tensors["time_emb_proj.weight"] = at::ones({2, 1});
  const at::Tensor x = values({1, 2, 3, 4}, {1, 1, 2, 2});
  // The time embedding only shifts the constant residual before norm2, which removes it again.
  const at::Tensor temb = values({3}, {1, 1});
  const at::Tensor out = nn::resnet_block(Weights(tensors), x, temb, 1, 1e-6);
  expect_close(out, at::cat({2 * x + 0.25, -x + 1.25}, 1));
}

TEST(NnOps, TimestepEmbeddingHandComputed) {
  // dim 4: half 2, frequencies exp(-ln(10000)·i/2) = (1, 0.01).
  const at::Tensor t = values({0, 1}, {2});
  const at::Tensor cos_first = nn::timestep_embedding(t, 4, true, 0.0);
  const float c1 = std::cos(1.0f), c2 = std::cos(0.01f), s1 = std::sin(1.0f), s2 = std::sin(0.01f);
  expect_close(cos_first, values({1, 1, 0, 0, c1, c2, s1, s2}, {2, 4}));
  const at::Tensor sin_first = nn::timestep_embedding(t.to(at::kHalf), 4, false, 0.0);
  EXPECT_EQ(sin_first.scalar_type(), at::kFloat);
  expect_close(sin_first, values({0, 0, 1, 1, s1, s2, c1, c2}, {2, 4}));
  // freq_shift 1: exponent divided by half - 1 = 1, frequencies (1, 1e-4).
  expect_close(nn::timestep_embedding(values({2.5}, {1}), 4, true, 1.0),
               values({std::cos(2.5f), std::cos(2.5e-4f), std::sin(2.5f), std::sin(2.5e-4f)},
                      {1, 4}));
}

TEST(NnOps, TimestepMlpAppliesSiluBetweenLinears) {
  const Weights w({{"linear_1.weight", values({1}, {1, 1})},
                   {"linear_1.bias", values({-1}, {1})},
                   {"linear_2.weight", values({3}, {1, 1})}});
  const float hidden = 2.0f / (1 + std::exp(-2.0f));
  expect_close(nn::timestep_mlp(w, values({3}, {1, 1})), values({3 * hidden}, {1, 1}));
}

TEST(NnOps, UpsampleRepeatsNearestPixelsToTheRequestedSize) {
  // The 3x3 conv passes the centre pixel through unchanged.
  at::Tensor kernel = at::zeros({1, 1, 3, 3});
  kernel[0][0][1][1] = 1;
  const Weights w({{"conv.weight", kernel}, {"conv.bias", at::zeros({1})}});
  const at::Tensor x = values({1, 2, 3, 4}, {1, 1, 2, 2});
  expect_close(nn::upsample(w, x, 4, 4),
               values({1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, {1, 1, 4, 4}));
  expect_close(nn::upsample(w, x, 3, 2), values({1, 2, 1, 2, 3, 4}, {1, 1, 3, 2}));
}

TEST(NnOps, DownsamplePaddingVariants) {
  // All-ones kernel on a 4x4 field of ones counts the in-image pixels under each window.
  const Weights w({{"conv.weight", at::ones({1, 1, 3, 3})}});
  const at::Tensor x = at::ones({1, 1, 4, 4});
  expect_close(nn::downsample(w, x, nn::DownsamplePadding::kSymmetric),
               values({4, 6, 6, 9}, {1, 1, 2, 2}));
  expect_close(nn::downsample(w, x, nn::DownsamplePadding::kBottomRight),
               values({9, 6, 6, 4}, {1, 1, 2, 2}));
  EXPECT_EQ(nn::downsample(w, at::ones({1, 1, 5, 7}), nn::DownsamplePadding::kBottomRight).sizes(),
            (std::vector<int64_t>{1, 1, 2, 3}));
}

TEST(NnOps, RequireShapeNamesTensorAndBothShapes) {
  const Weights w = Weights({{"block.conv.weight", at::zeros({2, 3})}}).sub("block");
  EXPECT_NO_THROW(nn::require_shape(w, "conv.weight", {2, 3}));
  try {
    nn::require_shape(w, "conv.weight", {3, 2});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptFile);
    EXPECT_NE(std::string(e.what()).find("block.conv.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3, 2]"), std::string::npos) << e.what();
  }
  try {
    nn::require_shape(w, "missing.weight", {1});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptFile);
  }
}

}  // namespace
}  // namespace df::engine
