// Unit tests for LoRA files as patches: key layouts mapped onto engine weights, unmatched and
// unfitting tensors reported, strengths, stacking and the file loader.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../pickle_test_bytes.h"
#include "core/error.h"
#include "engine/adapters/lora.h"
#include "engine/adapters/lycoris_adapters.h"
#include "engine/ldm_keys.h"
#include "engine/safetensors.h"
#include "engine/tiny_model.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

at::Tensor seq(at::IntArrayRef shape, double start = -1.0, double step = 0.125) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return (at::arange(count, at::kFloat) * step + start).reshape(shape);
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(actual, expected, 1e-5, 1e-6));
}

// The weights of the tiny pipeline of `family` as lora_targets would list them.
LoraTargets tiny_targets(Family family) {
  const PipelineConfig config = tiny_pipeline_config(family);
  LoraTargets targets;
  targets.unet_config = config.unet;
  for (const auto& entry : unet_tensor_layout(config.unet)) targets.unet[entry.name] = entry.shape;
  const auto kinds = text_encoder_kinds(family);
  for (size_t i = 0; i < kinds.size(); ++i) {
    LoraTextEncoderTarget encoder;
    encoder.kind = kinds[i];
    for (const auto& entry : clip_text_tensor_layout(config.text_encoders[i])) {
      const std::string prefix = "text_model.";
      const bool nested = entry.name.starts_with(prefix);
      encoder.weights[nested ? entry.name.substr(prefix.size()) : entry.name] = entry.shape;
    }
    targets.text_encoders.push_back(std::move(encoder));
  }
  return targets;
}

// A LoRA pair for a weight of `shape` ([out, in] or [out, in, kh, kw]) at rank 2.
struct Pair {
  at::Tensor up, down;
};

Pair lora_pair(const std::vector<int64_t>& shape, double start = -0.5) {
  std::vector<int64_t> down_shape = shape;
  down_shape[0] = 2;
  std::vector<int64_t> up_shape(shape.size(), 1);
  up_shape[0] = shape[0];
  up_shape[1] = 2;
  return {seq(up_shape, start, 0.01), seq(down_shape, 0.3, -0.02)};
}

at::Tensor pair_diff(const Pair& pair, const std::vector<int64_t>& shape, double scale) {
  return (at::mm(pair.up.flatten(1), pair.down.flatten(1)) * scale).reshape(shape);
}

// The delta the single patch of `key` gives on a zero weight, times its strength.
at::Tensor patched_change(const WeightPatches& patches, const std::string& key,
                          const std::vector<int64_t>& shape) {
  const auto& list = patches.at(key);
  EXPECT_EQ(list.size(), 1u);
  return list.at(0).adapter->delta(at::zeros(shape)) * list.at(0).strength;
}

TEST(LoraKeys, KohyaDiffusersNamesPatchTheUNetWithStrengthModel) {
  const LoraTargets targets = tiny_targets(Family::kSD1);
  const std::string key = "down_blocks.1.attentions.0.proj_in.weight";
  const auto& shape = targets.unet.at(key);  // a 1x1 convolution in SD1
  const Pair pair = lora_pair(shape);
  const std::string name = "lora_unet_down_blocks_1_attentions_0_proj_in";
  const TensorMap lora = {{name + ".lora_up.weight", pair.up},
                          {name + ".lora_down.weight", pair.down},
                          {name + ".alpha", at::scalar_tensor(1.0)}};
  const LoraPatches patches = lora_patches(lora, targets, 0.75, 0.2);
  EXPECT_TRUE(patches.unmatched.empty());
  EXPECT_TRUE(patches.rejected.empty());
  EXPECT_EQ(patches.unet.size(), 1u);
  EXPECT_EQ(patches.unet.at(key).at(0).strength, 0.75);
  EXPECT_EQ(patches.unet.at(key).at(0).strength_model, 1.0);
  expect_close(patched_change(patches.unet, key, shape), pair_diff(pair, shape, 0.5) * 0.75);
}

TEST(LoraKeys, KohyaLdmNamesReachTheDiffusersWeights) {
  const LoraTargets targets = tiny_targets(Family::kSDXL);
  const std::map<std::string, std::string> names = {
      {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q",
       "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"},
      {"lora_unet_output_blocks_2_2_conv", "up_blocks.0.upsamplers.0.conv.weight"},
      {"lora_unet_middle_block_0_in_layers_2", "mid_block.resnets.0.conv1.weight"},
      {"lora_unet_output_blocks_4_0_skip_connection", "up_blocks.1.resnets.1.conv_shortcut.weight"},
      {"lora_unet_label_emb_0_2", "add_embedding.linear_2.weight"}};
  TensorMap lora;
  for (const auto& [name, key] : names) {
    const Pair pair = lora_pair(targets.unet.at(key));
    lora[name + ".lora_up.weight"] = pair.up;
    lora[name + ".lora_down.weight"] = pair.down;
  }
  const LoraPatches patches = lora_patches(lora, targets, 1.0, 1.0);
  EXPECT_TRUE(patches.unmatched.empty()) << patches.unmatched.front();
  for (const auto& [name, key] : names) {
    ASSERT_TRUE(patches.unet.count(key)) << name;
    const auto& shape = targets.unet.at(key);
    expect_close(patched_change(patches.unet, key, shape),
                 pair_diff({lora.at(name + ".lora_up.weight"), lora.at(name + ".lora_down.weight")},
                           shape, 1.0));
  }
}

TEST(LoraKeys, DiffusersAndPeftLayoutsOfUNetAndTextEncoders) {
  const LoraTargets targets = tiny_targets(Family::kSDXL);
  struct Case {
    std::string up, down;
    int module;  // -1 UNet, else text encoder
    std::string key;
  };
  const std::string attn = "unet.down_blocks.1.attentions.0.transformer_blocks.0.";
  const std::vector<Case> cases = {
      {attn + "attn2.to_k.lora_B.weight", attn + "attn2.to_k.lora_A.weight", -1,
       "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"},
      {attn + "attn1.processor.to_out_lora.up.weight",
       attn + "attn1.processor.to_out_lora.down.weight", -1,
       "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.weight"},
      {"unet.up_blocks.0.resnets.1.conv2.lora.up.weight",
       "unet.up_blocks.0.resnets.1.conv2.lora.down.weight", -1, "up_blocks.0.resnets.1.conv2.weight"},
      {"text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.up.weight",
       "text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.down.weight", 0,
       "encoder.layers.0.mlp.fc1.weight"},
      {"text_encoder_2.text_model.encoder.layers.1.mlp.fc2.lora_B.weight",
       "text_encoder_2.text_model.encoder.layers.1.mlp.fc2.lora_A.weight", 1,
       "encoder.layers.1.mlp.fc2.weight"},
      {"lora_te2_text_projection.lora_up.weight", "lora_te2_text_projection.lora_down.weight", 1,
       "text_projection.weight"},
      {"text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.lora_up.weight",
       "text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.lora_down.weight",
       0, "embeddings.token_embedding.weight"}};
  TensorMap lora;
  for (const auto& c : cases) {
    const auto& shapes = c.module < 0 ? targets.unet : targets.text_encoders[c.module].weights;
    const Pair pair = lora_pair(shapes.at(c.key));
    lora[c.up] = pair.up;
    lora[c.down] = pair.down;
  }
  const LoraPatches patches = lora_patches(lora, targets, 0.5, -1.5);
  EXPECT_TRUE(patches.unmatched.empty()) << patches.unmatched.front();
  for (const auto& c : cases) {
    const auto& found = c.module < 0 ? patches.unet : patches.text_encoders.at(c.module);
    const auto& shapes = c.module < 0 ? targets.unet : targets.text_encoders[c.module].weights;
    ASSERT_TRUE(found.count(c.key)) << c.up;
    expect_close(patched_change(found, c.key, shapes.at(c.key)),
                 pair_diff({lora.at(c.up), lora.at(c.down)}, shapes.at(c.key), 1.0) *
                     (c.module < 0 ? 0.5 : -1.5));
  }
}

TEST(LoraKeys, KohyaTextEncoderPrefixesFollowTheFamily) {
  const std::string layer = "_text_model_encoder_layers_2_self_attn_q_proj";
  const std::string key = "encoder.layers.2.self_attn.q_proj.weight";
  const Pair pair = lora_pair({32, 32});
  auto patch_of = [&](Family family, const std::string& prefix) {
    const TensorMap lora = {{prefix + layer + ".lora_up.weight", pair.up},
                            {prefix + layer + ".lora_down.weight", pair.down}};
    return lora_patches(lora, tiny_targets(family), 1.0, 1.0);
  };
  EXPECT_EQ(patch_of(Family::kSD1, "lora_te").text_encoders.at(0).count(key), 1u);
  EXPECT_EQ(patch_of(Family::kSD2, "lora_te").text_encoders.at(0).count(key), 1u);
  EXPECT_EQ(patch_of(Family::kSDXL, "lora_te1").text_encoders.at(0).count(key), 1u);
  const LoraPatches second = patch_of(Family::kSDXL, "lora_te2");
  EXPECT_EQ(second.text_encoders.at(0).count(key), 0u);
  EXPECT_EQ(second.text_encoders.at(1).count(key), 1u);
  EXPECT_EQ(patch_of(Family::kSD1, "lora_te2").unmatched.size(), 2u);
}

TEST(LoraKeys, UnmatchedTensorsAreListedSorted) {
  LoraTargets targets = tiny_targets(Family::kSD1);
  const Pair pair = lora_pair({32, 32});
  const std::string text = "lora_te_text_model_encoder_layers_0_self_attn_k_proj";
  const std::string unet = "lora_unet_down_blocks_0_resnets_0_conv1";
  const Pair conv = lora_pair(targets.unet.at("down_blocks.0.resnets.0.conv1.weight"));
  TensorMap lora = {{text + ".lora_up.weight", pair.up},
                    {text + ".lora_down.weight", pair.down},
                    {text + ".alpha", at::scalar_tensor(2.0)},
                    {unet + ".lora_B.weight", conv.up},
                    {unet + ".lora_A.weight", conv.down},
                    {unet + ".lora_mid.weight", seq({2, 2, 3, 3})},  // kohya's mid, no kohya up
                    {"lora_unet_no_such_module.lora_up.weight", pair.up},
                    {"not_a_lora_tensor", pair.up}};
  targets.text_encoders.clear();  // as LoraLoaderModelOnly
  const LoraPatches patches = lora_patches(lora, targets, 1.0, 1.0);
  EXPECT_EQ(patches.unet.size(), 1u);
  EXPECT_EQ(patches.unmatched,
            (std::vector<std::string>{text + ".alpha", text + ".lora_down.weight",
                                      text + ".lora_up.weight", unet + ".lora_mid.weight",
                                      "lora_unet_no_such_module.lora_up.weight",
                                      "not_a_lora_tensor"}));
}

template <typename Adapter>
bool adapter_is(const WeightPatches& patches, const std::string& key) {
  return dynamic_cast<const Adapter*>(patches.at(key).at(0).adapter.get()) != nullptr;
}

TEST(LoraKeys, LyCorisDoraAndDifferencePatches) {
  const LoraTargets targets = tiny_targets(Family::kSD1);
  const std::string q = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q";
  const std::string k = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_k";
  const std::string v = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_v";
  const std::string attn = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.";
  const TensorMap lora = {{q + ".hada_w1_a", seq({64, 2})},
                          {q + ".hada_w1_b", seq({2, 64})},
                          {q + ".hada_w2_a", seq({64, 2}, 0.5)},
                          {q + ".hada_w2_b", seq({2, 64}, 0.2)},
                          {q + ".alpha", at::scalar_tensor(1.0)},
                          {k + ".lokr_w1", seq({8, 8})},
                          {k + ".lokr_w2", seq({8, 8}, 0.1)},
                          {k + ".dora_scale", seq({64, 1}, 1.0, 0.01)},
                          {v + ".lora_up.weight", seq({64, 2})},
                          {v + ".lora_down.weight", seq({2, 64})},
                          {"diffusion_model.input_blocks.0.0.diff", seq({32, 4, 3, 3})},
                          {"diffusion_model.input_blocks.0.0.diff_b", seq({32})}};
  const LoraPatches patches = lora_patches(lora, targets, 1.0, 1.0);
  EXPECT_TRUE(patches.unmatched.empty()) << patches.unmatched.front();
  EXPECT_TRUE(patches.rejected.empty()) << patches.rejected.front();
  EXPECT_TRUE(adapter_is<LohaAdapter>(patches.unet, attn + "to_q.weight"));
  EXPECT_TRUE(adapter_is<LokrAdapter>(patches.unet, attn + "to_k.weight"));
  EXPECT_TRUE(adapter_is<LoraAdapter>(patches.unet, attn + "to_v.weight"));
  expect_close(patched_change(patches.unet, "conv_in.weight", {32, 4, 3, 3}), seq({32, 4, 3, 3}));
  expect_close(patched_change(patches.unet, "conv_in.bias", {32}), seq({32}));
  // DoRA: the patched rows have the magnitudes' norms.
  const at::Tensor weight = seq({64, 64}, -0.5, 0.0002);
  const at::Tensor patched =
      weight + patches.unet.at(attn + "to_k.weight")[0].adapter->delta(weight);
  const at::Tensor row_norms = weight.norm(2, {1}, true);
  expect_close(patched.norm(2, {1}, true) / (weight + at::kron(seq({8, 8}), seq({8, 8}, 0.1)))
                                                .norm(2, {1}, true) * row_norms,
               seq({64, 1}, 1.0, 0.01));
}

TEST(LoraKeys, PatchesThatDoNotFitAreRejectedNotApplied) {
  const LoraTargets targets = tiny_targets(Family::kSD1);
  const std::string name = "lora_unet_down_blocks_1_attentions_0_proj_out";
  const TensorMap lora = {{name + ".lora_up.weight", seq({32, 2})},  // a 32-channel layer's
                          {name + ".lora_down.weight", seq({2, 32})},
                          {"lora_unet_conv_in.diff", seq({3, 3})},
                          {"lora_unet_conv_out.lora_up.weight", seq({4, 2})},
                          {"lora_unet_conv_out.lora_down.weight", seq({3, 5})}};
  const LoraPatches patches = lora_patches(lora, targets, 1.0, 1.0);
  EXPECT_TRUE(patches.unet.empty());
  EXPECT_TRUE(patches.unmatched.empty());
  ASSERT_EQ(patches.rejected.size(), 3u);
  EXPECT_NE(patches.rejected[0].find("conv_in.weight"), std::string::npos);
}

TEST(LoraKeys, NegativeStrengthAndStackedLorasAddUp) {
  const LoraTargets targets = tiny_targets(Family::kSD1);
  const std::string key = "encoder.layers.3.mlp.fc2.weight";
  const std::string name = "lora_te_text_model_encoder_layers_3_mlp_fc2";
  const auto& shape = targets.text_encoders[0].weights.at(key);
  const Pair first = lora_pair(shape, -0.5);
  const Pair second = lora_pair(shape, 0.25);
  const auto patches_of = [&](const Pair& pair, double strength) {
    const TensorMap lora = {{name + ".lora_up.weight", pair.up},
                            {name + ".lora_down.weight", pair.down}};
    return lora_patches(lora, targets, 1.0, strength).text_encoders.at(0);
  };
  WeightPatches stacked = patches_of(first, -0.7);
  append_patches(stacked, patches_of(second, 1.3));
  const at::Tensor weight = seq(shape, 0.1, 0.001);
  const Weights patched = apply_patches(Weights({{key, weight}}), stacked);
  expect_close(patched.get(key), weight - 0.7 * pair_diff(first, shape, 1.0) +
                                     1.3 * pair_diff(second, shape, 1.0));
}

TEST(LoraKeys, Sd2LastOpenClipLayerIsTakenWithoutEffect) {
  LoraTargets targets = tiny_targets(Family::kSD2);
  targets.text_encoders[0].uncomputed_layers = 1;  // the tiny encoder has layers 0-4
  const std::string name = "lora_te_text_model_encoder_layers_5_mlp_fc1";
  const TensorMap lora = {{name + ".lora_up.weight", seq({37, 2})},
                          {name + ".lora_down.weight", seq({2, 32})},
                          {"lora_te_text_model_encoder_layers_6_mlp_fc1.lora_up.weight",
                           seq({37, 2})}};
  const LoraPatches patches = lora_patches(lora, targets, 1.0, 1.0);
  EXPECT_TRUE(patches.text_encoders.at(0).empty());
  EXPECT_EQ(patches.unmatched,
            std::vector<std::string>{"lora_te_text_model_encoder_layers_6_mlp_fc1.lora_up.weight"});
}

TEST(LoraKeys, TextModelPrefixedEncoderKeysAreNamedTheSame) {
  LoraTargets targets;
  LoraTextEncoderTarget encoder;
  encoder.kind = TextEncoderKind::kClipL;
  encoder.weights["text_model.encoder.layers.0.self_attn.v_proj.weight"] = {32, 32};
  targets.text_encoders.push_back(encoder);
  const Pair pair = lora_pair({32, 32});
  const std::string name = "lora_te_text_model_encoder_layers_0_self_attn_v_proj";
  const TensorMap lora = {{name + ".lora_up.weight", pair.up},
                          {name + ".lora_down.weight", pair.down}};
  const LoraPatches patches = lora_patches(lora, targets, 1.0, 1.0);
  EXPECT_EQ(patches.text_encoders.at(0).count("text_model.encoder.layers.0.self_attn.v_proj.weight"),
            1u);
}

TEST(LoraKeys, AlphaThatIsNotANumberIsACorruptFile) {
  const std::string name = "lora_unet_conv_in";
  const TensorMap lora = {{name + ".lora_up.weight", seq({32, 2, 1, 1})},
                          {name + ".lora_down.weight", seq({2, 4, 3, 3})},
                          {name + ".alpha", seq({2})}};
  try {
    lora_patches(lora, tiny_targets(Family::kSD1), 1.0, 1.0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptFile);
  }
}

TEST(LoraKeys, LdmNamesRoundTripThroughTheCheckpointConverter) {
  UNetConfig with_plain_up_block = tiny_pipeline_config(Family::kSD1).unet;
  with_plain_up_block.down_block_types = {"CrossAttnDownBlock2D", "DownBlock2D"};
  with_plain_up_block.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D"};
  std::vector<UNetConfig> configs = {with_plain_up_block};
  for (Family family : {Family::kSD1, Family::kSD2, Family::kSDXL}) {
    configs.push_back(tiny_pipeline_config(family).unet);
  }
  for (const auto& config : configs) {
    for (const auto& entry : unet_tensor_layout(config)) {
      const auto ldm = diffusers_unet_key_to_ldm(entry.name, config);
      ASSERT_TRUE(ldm) << entry.name;
      EXPECT_EQ(ldm_unet_key_to_diffusers(*ldm, config.layers_per_block), entry.name) << *ldm;
    }
  }
}

TEST(LoraFile, LoadsWeightsAndRefusesUnsafeOrBrokenFiles) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(testing::TempDir()) / "lora_file_test";
  fs::create_directories(dir);
  const Pair pair = lora_pair({32, 32});
  const std::string name = "lora_te_text_model_encoder_layers_1_self_attn_out_proj";
  const std::string path = (dir / "style.safetensors").string();
  save_safetensors(path, {{name + ".lora_up.weight", pair.up.to(at::kHalf)},
                          {name + ".lora_down.weight", pair.down.to(at::kBFloat16)}});
  const LoraPatches patches = load_lora(path, tiny_targets(Family::kSD1), 1.0, 0.5);
  EXPECT_EQ(patches.text_encoders.at(0).count("encoder.layers.1.self_attn.out_proj.weight"), 1u);

  auto code_of = [](const std::string& file) {
    try {
      load_lora(file, tiny_targets(Family::kSD1), 1.0, 1.0);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kInternal;
  };
  EXPECT_EQ(code_of((dir / "missing.safetensors").string()), ErrorCode::kModelNotFound);
  test::write_file((dir / "style.ckpt").string(), test::hostile_pickle());
  EXPECT_EQ(code_of((dir / "style.ckpt").string()), ErrorCode::kUnsafeFormat);
  {
    std::ofstream broken(dir / "broken.safetensors");
    broken << "not a safetensors file";
  }
  EXPECT_EQ(code_of((dir / "broken.safetensors").string()), ErrorCode::kCorruptFile);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace df::engine
