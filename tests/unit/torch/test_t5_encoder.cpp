// Unit tests of the T5 encoder: shape checks, inputs, masks, float16 weights, weighting and loading.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "engine/safetensors.h"
#include "engine/text/t5_config.h"
#include "engine/text/t5_encoder.h"
#include "../test_support.h"

namespace df::engine {
namespace {

constexpr int64_t kVocab = 40;

// Seeded random weights of the tiny config (norm weights around 1).
TensorMap random_tensors(const T5Config& config) {
  at::manual_seed(7);
  TensorMap tensors;
  for (const TensorShape& t : t5_encoder_layout(config)) {
    at::Tensor value = at::randn(t.shape) * 0.3;
    if (t.name.ends_with("layer_norm.weight")) value = value + 1.0;
    tensors[t.name] = value;
  }
  return tensors;
}

T5Encoder tiny_encoder() { return T5Encoder(tiny_t5_config(kVocab), Weights(random_tensors(tiny_t5_config(kVocab)))); }

at::Tensor ids_of(std::vector<int64_t> ids) { return at::tensor(ids, at::kLong).unsqueeze(0); }

TEST(T5Encoder, ForwardGivesFloat32HiddenStates) {
  const T5Encoder encoder = tiny_encoder();
  const at::Tensor hidden = encoder.forward(at::randint(kVocab, {2, 9}, at::kLong));
  EXPECT_EQ(hidden.sizes(), (at::IntArrayRef{2, 9, 32}));
  EXPECT_EQ(hidden.scalar_type(), at::kFloat);
  EXPECT_TRUE(hidden.isfinite().all().item<bool>());
}

TEST(T5Encoder, WrongOrMissingTensorsFailAtConstruction) {
  const T5Config config = tiny_t5_config(kVocab);
  TensorMap wrong = random_tensors(config);
  wrong["encoder.block.1.layer.1.DenseReluDense.wo.weight"] = at::zeros({32, 36});
  const Error error = test::error_of([&] { T5Encoder(config, Weights(wrong)); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("encoder.block.1.layer.1.DenseReluDense.wo.weight"),
            std::string::npos);
  TensorMap missing = random_tensors(config);
  missing.erase("encoder.final_layer_norm.weight");
  EXPECT_EQ(test::error_code_of([&] { T5Encoder(config, Weights(missing)); }), ErrorCode::kCorruptFile);
}

TEST(T5Encoder, EmbedTokensMayStandInForShared) {
  const T5Config config = tiny_t5_config(kVocab);
  TensorMap tensors = random_tensors(config);
  const at::Tensor ids = ids_of({3, 5, 1, 0});
  const at::Tensor expected = T5Encoder(config, Weights(tensors)).forward(ids);
  tensors["encoder.embed_tokens.weight"] = tensors.at("shared.weight");
  tensors.erase("shared.weight");
  EXPECT_TRUE(at::allclose(T5Encoder(config, Weights(tensors)).forward(ids), expected));
}

TEST(T5Encoder, BadInputsAreRejected) {
  const T5Encoder encoder = tiny_encoder();
  EXPECT_EQ(test::error_code_of([&] { encoder.forward(at::zeros({4}, at::kLong)); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { encoder.forward(ids_of({kVocab})); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { encoder.forward(ids_of({-1})); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { encoder.forward(at::zeros({1, 3})); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { encoder.forward(ids_of({1, 2}), at::ones({1, 3}, at::kLong)); }),
            ErrorCode::kInvalidArgument);
}

TEST(T5Encoder, MaskedKeysDoNotInfluenceUnmaskedPositions) {
  const T5Encoder encoder = tiny_encoder();
  const at::Tensor mask = at::tensor(std::vector<int64_t>{1, 1, 1, 0, 0}).unsqueeze(0);
  const at::Tensor a = encoder.forward(ids_of({4, 7, 1, 0, 0}), mask);
  const at::Tensor b = encoder.forward(ids_of({4, 7, 1, 9, 12}), mask);
  EXPECT_TRUE(at::allclose(a.slice(1, 0, 3), b.slice(1, 0, 3), 1e-5, 1e-6));
  EXPECT_FALSE(at::allclose(encoder.forward(ids_of({4, 7, 1, 0, 0})).slice(1, 0, 3),
                            encoder.forward(ids_of({4, 7, 1, 9, 12})).slice(1, 0, 3)));
}

TEST(T5Encoder, AttentionMaskRunsThroughTheFirstEos) {
  const at::Tensor mask = t5_attention_mask(at::tensor(std::vector<int64_t>{5, 6, 1, 0, 1, 0}).view({2, 3}));
  EXPECT_TRUE(at::equal(mask, at::tensor(std::vector<int64_t>{1, 1, 1, 1, 1, 0}).view({2, 3})));
}

TEST(T5Encoder, Float16WeightsStayFiniteAndClose) {
  const T5Config config = tiny_t5_config(kVocab);
  Weights half(random_tensors(config));
  half.to(at::kHalf, at::kCPU);
  const at::Tensor ids = ids_of({3, 9, 27, 1, 0, 0});
  const at::Tensor expected = tiny_encoder().forward(ids);
  const at::Tensor actual = T5Encoder(config, half).forward(ids);
  EXPECT_EQ(actual.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(actual, expected, 0.0, 0.05)) << (actual - expected).abs().max();
}

TEST(T5Encoder, WeightedEncodingInterpolatesOnlyReweightedPositions) {
  const T5Encoder encoder = tiny_encoder();
  T5WeightedTokens tokens{{5, 8, 11, 1, 0, 0}, {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f}};
  const at::Tensor plain = encode_weighted(encoder, tokens);
  EXPECT_TRUE(at::allclose(plain, encoder.forward(ids_of({5, 8, 11, 1, 0, 0}))));
  tokens.weights[1] = 0.0f;
  tokens.weights[2] = 2.0f;
  const at::Tensor weighted = encode_weighted(encoder, tokens);
  const at::Tensor empty = encoder.forward(ids_of({1, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(at::allclose(weighted.select(1, 0), plain.select(1, 0)));
  EXPECT_TRUE(at::allclose(weighted.select(1, 1), empty.select(1, 1), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(weighted.select(1, 2), (plain.select(1, 2) - empty.select(1, 2)) * 2 + empty.select(1, 2),
                           1e-5, 1e-6));
  EXPECT_EQ(test::error_code_of([&] { encode_weighted(encoder, T5WeightedTokens{{1}, {}}); }),
            ErrorCode::kInvalidArgument);
}

TEST(T5Encoder, LoadsAWeightsFileSkippingOtherTensors) {
  test::TestDir dir("df_t5_encoder_");
  TensorMap tensors = random_tensors(tiny_t5_config(kVocab));
  tensors["text_model.final_layer_norm.weight"] = at::ones({8});
  const std::string path = (dir.path() / "t5.safetensors").string();
  save_safetensors(path, tensors);
  const T5Encoder loaded = load_t5_encoder(path, at::kFloat);
  EXPECT_EQ(loaded.config(), tiny_t5_config(kVocab));
  EXPECT_FALSE(loaded.weights().has("text_model.final_layer_norm.weight"));
  EXPECT_TRUE(at::allclose(loaded.forward(ids_of({2, 4, 1})), tiny_encoder().forward(ids_of({2, 4, 1}))));
}

}  // namespace
}  // namespace df::engine
