// Tests of the Qwen3 encoder on a tiny random model: shape checks, masks, layer selection, loading, Z-Image path.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "engine/safetensors.h"
#include "engine/text/qwen3_encoder.h"
#include "engine/text/qwen3_zimage_prompt.h"
#include "engine/text/tokenizers/byte_bpe_tiny.h"
#include "engine/text/tokenizers/byte_bpe_tokenizer.h"
#include "../test_support.h"

namespace df::engine {
namespace {

constexpr int kVocab = 120;

TensorMap random_tensors(const Qwen3Config& config) {
  at::manual_seed(0);
  TensorMap tensors;
  for (const auto& tensor : qwen3_layout(config)) {
    tensors.emplace(tensor.name, at::randn(tensor.shape) * 0.3 + (tensor.shape.size() == 1 ? 1.0 : 0.0));
  }
  return tensors;
}

Qwen3Encoder tiny_encoder() {
  const Qwen3Config config = tiny_qwen3_config(kVocab);
  return Qwen3Encoder(config, Weights(random_tensors(config)));
}

at::Tensor ids_of(std::vector<int64_t> ids) { return at::tensor(ids, at::kLong).unsqueeze(0); }

TEST(Qwen3Encoder, WrongOrMissingTensorsNameTheTensor) {
  const Qwen3Config config = tiny_qwen3_config(kVocab);
  TensorMap tensors = random_tensors(config);
  tensors["model.layers.1.self_attn.k_norm.weight"] = at::ones({16});
  Error error = test::error_of([&] { Qwen3Encoder(config, Weights(tensors)); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("model.layers.1.self_attn.k_norm.weight"), std::string::npos);

  tensors = random_tensors(config);
  tensors.erase("model.norm.weight");
  error = test::error_of([&] { Qwen3Encoder(config, Weights(tensors)); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("model.norm.weight"), std::string::npos);
}

TEST(Qwen3Encoder, HiddenStatesFollowTransformersIndexing) {
  const Qwen3Encoder encoder = tiny_encoder();
  const at::Tensor ids = ids_of({5, 17, 99, 3});
  const at::Tensor mask = at::ones_like(ids);
  EXPECT_EQ(encoder.hidden_states(ids, mask, -2).sizes(), (at::IntArrayRef{1, 4, 32}));
  EXPECT_TRUE(at::equal(encoder.hidden_states(ids, mask, -1), encoder.hidden_states(ids, mask, 3)));
  EXPECT_TRUE(at::equal(encoder.hidden_states(ids, mask, -2), encoder.hidden_states(ids, mask, 2)));
  EXPECT_TRUE(at::equal(encoder.hidden_states(ids, mask, -4),
                        encoder.weights().get("model.embed_tokens.weight").index_select(0, ids[0]).unsqueeze(0)));
  // The final norm leaves every position with root-mean-square weight-scaled unit size: it differs.
  EXPECT_FALSE(at::allclose(encoder.hidden_states(ids, mask, -1), encoder.hidden_states(ids, mask, -2)));
}

TEST(Qwen3Encoder, RightPaddingLeavesRealTokensUnchanged) {
  const Qwen3Encoder encoder = tiny_encoder();
  const at::Tensor alone = encoder.hidden_states(ids_of({7, 8, 9}), at::Tensor(), -2);
  const at::Tensor padded_ids = ids_of({7, 8, 9, 0, 0});
  const at::Tensor mask = ids_of({1, 1, 1, 0, 0});
  const at::Tensor padded = encoder.hidden_states(padded_ids, mask, -2);
  EXPECT_TRUE(at::allclose(padded.narrow(1, 0, 3), alone, 1e-5, 1e-5));
  EXPECT_FALSE(padded.isnan().any().item<bool>());
  // Causal: a later token does not change earlier states.
  EXPECT_TRUE(at::allclose(encoder.hidden_states(ids_of({7, 8}), at::Tensor(), -1),
                           encoder.hidden_states(ids_of({7, 8, 9}), at::Tensor(), -1).narrow(1, 0, 2),
                           1e-5, 1e-5));
}

TEST(Qwen3Encoder, BadInputsAreInvalidArguments) {
  const Qwen3Encoder encoder = tiny_encoder();
  const at::Tensor ids = ids_of({1, 2});
  auto code = [&](auto&& call) { return test::error_code_of(call); };
  EXPECT_EQ(code([&] { encoder.hidden_states(ids, at::Tensor(), 4); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code([&] { encoder.hidden_states(ids, at::Tensor(), -5); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code([&] { encoder.hidden_states(ids_of({1, kVocab}), at::Tensor(), -2); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code([&] { encoder.hidden_states(ids, at::ones({1, 3}), -2); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code([&] { encoder.hidden_states(at::ones({2}, at::kLong), at::Tensor(), -2); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code([&] { encoder.hidden_states(at::ones({1, 2}), at::Tensor(), -2); }),
            ErrorCode::kInvalidArgument);
}

TEST(Qwen3Encoder, LoadsAFileWithLmHeadAndInfersItsConfig) {
  test::TestDir dir("df_qwen3_");
  const Qwen3Config config = tiny_qwen3_config(kVocab);
  TensorMap tensors = random_tensors(config);
  tensors.emplace("lm_head.weight", at::zeros({kVocab, 32}));
  const std::string path = (dir.path() / "qwen3.safetensors").string();
  save_safetensors(path, tensors);
  const Qwen3Encoder loaded = Qwen3Encoder::load(path, at::kFloat);
  EXPECT_EQ(loaded.config(), config);
  const at::Tensor ids = ids_of({4, 5, 6});
  EXPECT_TRUE(at::allclose(loaded.hidden_states(ids, at::Tensor(), -2),
                           tiny_encoder().hidden_states(ids, at::Tensor(), -2)));
}

TEST(Qwen3Encoder, ComputesInTheDtypeOfItsWeights) {
  test::TestDir dir("df_qwen3_bf16_");
  const std::string path = (dir.path() / "qwen3.safetensors").string();
  save_safetensors(path, random_tensors(tiny_qwen3_config(kVocab)));
  const at::Tensor ids = ids_of({4, 5, 6, 7});
  const at::Tensor half = Qwen3Encoder::load(path, at::kBFloat16).hidden_states(ids, at::Tensor(), -2);
  const at::Tensor full = tiny_encoder().hidden_states(ids, at::Tensor(), -2);
  EXPECT_EQ(half.scalar_type(), at::kBFloat16);
  const double scale = full.abs().max().item<double>();
  EXPECT_LT((half.to(at::kFloat) - full).abs().max().item<double>(), 0.05 * scale);
}

TEST(Qwen3Encoder, LoadsABareQwen3ModelFile) {
  test::TestDir dir("df_qwen3_bare_");
  const Qwen3Config config = tiny_qwen3_config(kVocab);
  TensorMap bare;
  for (auto& [name, tensor] : random_tensors(config)) bare.emplace(name.substr(6), tensor);
  const std::string path = (dir.path() / "model.safetensors").string();
  save_safetensors(path, bare);
  const at::Tensor ids = ids_of({4, 5, 6});
  EXPECT_TRUE(at::allclose(Qwen3Encoder::load(path, at::kFloat).hidden_states(ids, at::Tensor(), -2),
                           tiny_encoder().hidden_states(ids, at::Tensor(), -2)));
}

TEST(Qwen3Encoder, LoadingAFileWithoutQwen3TensorsIsUnsupported) {
  test::TestDir dir("df_qwen3_other_");
  const std::string path = (dir.path() / "other.safetensors").string();
  save_safetensors(path, {{"text_model.embeddings.token_embedding.weight", at::zeros({4, 4})}});
  EXPECT_EQ(test::error_code_of([&] { Qwen3Encoder::load(path, at::kFloat); }), ErrorCode::kUnsupported);
}

TEST(ZImagePrompt, UsesComfyUiTemplateAndUnescapesParentheses) {
  EXPECT_EQ(zimage_chat_text("a \\(cat\\) (red hat:1.3)"),
            "<|im_start|>user\na (cat) (red hat:1.3)<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ZImagePrompt, EncodesEveryTokenOfTheTemplatedPrompt) {
  test::TestDir dir("df_qwen3_tokenizer_");
  write_tiny_qwen_tokenizer(dir.path().string());
  const auto tokenizer = ByteBpeTokenizer::from_file((dir.path() / "tokenizer.json").string());
  const Qwen3Config config = tiny_qwen3_config(static_cast<int>(tokenizer.vocab_size()));
  const Qwen3Encoder encoder(config, Weights(random_tensors(config)));
  const auto ids = zimage_prompt_ids(tokenizer, "a cat");
  EXPECT_EQ(ids.front(), tokenizer.token_id("<|im_start|>"));
  const ZImageTextEncoding encoding = encode_zimage_prompt(tokenizer, encoder, "a cat");
  EXPECT_EQ(encoding.states.sizes(), (at::IntArrayRef{1, static_cast<int64_t>(ids.size()), 32}));
  EXPECT_EQ(encoding.states.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(encoding.attention_mask, at::ones({1, static_cast<int64_t>(ids.size())}, at::kLong)));
}

}  // namespace
}  // namespace df::engine
