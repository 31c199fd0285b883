// The SD3 MMDiT's torch-free parts: real and tiny layouts, config JSON, inference from tensor
// names and shapes, and the Stability <-> diffusers key map.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/family/sd3/sd3_config.h"
#include "engine/family/sd3/sd3_keys.h"
#include "engine/tiny_model.h"
#include "test_support.h"

namespace df::engine::sd3 {
namespace {

Sd3Config sd3_medium() {
  Sd3Config c;  // the defaults are SD3 Medium's apart from the grid and the diffusers defaults
  c.depth = 24;
  c.num_heads = 24;
  c.caption_projection_dim = 1536;
  c.pos_embed_max_size = 192;
  return c;
}

Sd3Config sd35_large() {
  Sd3Config c = sd3_medium();
  c.depth = 38;
  c.num_heads = 38;
  c.caption_projection_dim = 2432;
  c.qk_norm = QkNorm::kRms;
  return c;
}

Sd3Config sd35_medium() {
  Sd3Config c = sd3_medium();
  c.pos_embed_max_size = 384;
  c.qk_norm = QkNorm::kRms;
  for (int64_t block = 0; block < 13; ++block) c.dual_attention_layers.push_back(block);
  return c;
}

std::vector<int64_t> shape_of(const std::vector<TensorShape>& layout, const std::string& name) {
  const auto it = std::find_if(layout.begin(), layout.end(),
                               [&](const TensorShape& t) { return t.name == name; });
  EXPECT_NE(it, layout.end()) << name;
  return it == layout.end() ? std::vector<int64_t>{} : it->shape;
}

bool has(const std::vector<TensorShape>& layout, const std::string& name) {
  return std::any_of(layout.begin(), layout.end(),
                     [&](const TensorShape& t) { return t.name == name; });
}

// 17 global tensors; per block 10 per stream (adaLN, qkv, proj, fc1, fc2), the last context
// stream 4 (adaLN, qkv); qk norm adds 4 per block, dual attention 4 (+2 with qk norm).
TEST(Sd3Layout, RealModelsHaveTheirKeyCounts) {
  EXPECT_EQ(sd3_transformer_layout(sd3_medium()).size(), 17u + 23 * 20 + 14);
  EXPECT_EQ(sd3_transformer_layout(sd35_large()).size(), 17u + 37 * 24 + 18);
  EXPECT_EQ(sd3_transformer_layout(sd35_medium()).size(), 17u + 23 * 24 + 18 + 13 * 6);
}

TEST(Sd3Layout, RealShapes) {
  const auto medium = sd3_transformer_layout(sd3_medium());
  EXPECT_EQ(shape_of(medium, "pos_embed"), (std::vector<int64_t>{1, 36864, 1536}));
  EXPECT_EQ(shape_of(medium, "x_embedder.proj.weight"), (std::vector<int64_t>{1536, 16, 2, 2}));
  EXPECT_EQ(shape_of(medium, "context_embedder.weight"), (std::vector<int64_t>{1536, 4096}));
  EXPECT_EQ(shape_of(medium, "y_embedder.mlp.0.weight"), (std::vector<int64_t>{1536, 2048}));
  EXPECT_EQ(shape_of(medium, "t_embedder.mlp.0.weight"), (std::vector<int64_t>{1536, 256}));
  EXPECT_EQ(shape_of(medium, "joint_blocks.0.context_block.adaLN_modulation.1.bias"),
            (std::vector<int64_t>{9216}));
  EXPECT_EQ(shape_of(medium, "joint_blocks.23.context_block.adaLN_modulation.1.weight"),
            (std::vector<int64_t>{3072, 1536}));
  EXPECT_FALSE(has(medium, "joint_blocks.23.context_block.attn.proj.weight"));
  EXPECT_FALSE(has(medium, "joint_blocks.23.context_block.mlp.fc1.weight"));
  EXPECT_EQ(shape_of(medium, "final_layer.linear.weight"), (std::vector<int64_t>{64, 1536}));

  const auto large = sd3_transformer_layout(sd35_large());
  EXPECT_EQ(shape_of(large, "joint_blocks.37.x_block.mlp.fc1.weight"),
            (std::vector<int64_t>{9728, 2432}));
  EXPECT_EQ(shape_of(large, "joint_blocks.5.context_block.attn.ln_k.weight"),
            (std::vector<int64_t>{64}));

  const auto medium35 = sd3_transformer_layout(sd35_medium());
  EXPECT_EQ(shape_of(medium35, "pos_embed"), (std::vector<int64_t>{1, 147456, 1536}));
  EXPECT_EQ(shape_of(medium35, "joint_blocks.12.x_block.adaLN_modulation.1.weight"),
            (std::vector<int64_t>{13824, 1536}));
  EXPECT_EQ(shape_of(medium35, "joint_blocks.12.x_block.attn2.qkv.weight"),
            (std::vector<int64_t>{4608, 1536}));
  EXPECT_EQ(shape_of(medium35, "joint_blocks.12.x_block.attn2.ln_q.weight"),
            (std::vector<int64_t>{64}));
  EXPECT_EQ(shape_of(medium35, "joint_blocks.13.x_block.adaLN_modulation.1.weight"),
            (std::vector<int64_t>{9216, 1536}));
  EXPECT_FALSE(has(medium35, "joint_blocks.13.x_block.attn2.qkv.weight"));
}

TEST(Sd3Config, InferredFromEveryLayout) {
  for (const Sd3Config& config : {sd3_medium(), sd35_large(), sd35_medium(), tiny_sd3_config(),
                                  tiny_sd3_config(true), tiny_sd3_config(true, true),
                                  tiny_sd3_config(false, true)}) {
    Sd3Config inferred = Sd3Config::infer_from_keys(sd3_transformer_layout(config));
    inferred.sample_size = config.sample_size;  // a diffusers-only field
    EXPECT_EQ(inferred, config) << config.to_diffusers_json().dump();
    EXPECT_TRUE(is_sd3_mmdit(sd3_transformer_layout(config)));
  }
}

TEST(Sd3Config, InferenceRefusesOtherStateDicts) {
  const std::vector<TensorShape> unet = {{"input_blocks.0.0.weight", {320, 4, 3, 3}}};
  EXPECT_FALSE(is_sd3_mmdit(unet));
  EXPECT_EQ(test::error_code_of([&] { Sd3Config::infer_from_keys(unet); }),
            ErrorCode::kUnsupported);

  std::vector<TensorShape> layout = sd3_transformer_layout(tiny_sd3_config());
  for (TensorShape& t : layout) {
    if (t.name == "pos_embed") t.shape[1] = 1000;
  }
  const Error error = test::error_of([&] { Sd3Config::infer_from_keys(layout); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("pos_embed"), std::string::npos);
}

TEST(Sd3Config, DiffusersJsonRoundTrip) {
  for (const Sd3Config& config : {sd35_medium(), tiny_sd3_config(true, true), tiny_sd3_config()}) {
    EXPECT_EQ(Sd3Config::from_diffusers_json(config.to_diffusers_json()), config);
  }
  const nlohmann::json json = tiny_sd3_config(true).to_diffusers_json();
  EXPECT_EQ(json.at("qk_norm"), "rms_norm");
  EXPECT_EQ(json.at("num_layers"), 2);
  EXPECT_TRUE(tiny_sd3_config().to_diffusers_json().at("qk_norm").is_null());
}

TEST(Sd3Config, DiffusersJsonErrors) {
  nlohmann::json json = tiny_sd3_config().to_diffusers_json();
  json["qk_norm"] = "layer_norm";
  EXPECT_EQ(test::error_code_of([&] { Sd3Config::from_diffusers_json(json); }),
            ErrorCode::kUnsupported);
  json = tiny_sd3_config().to_diffusers_json();
  json["caption_projection_dim"] = 48;
  EXPECT_EQ(test::error_code_of([&] { Sd3Config::from_diffusers_json(json); }),
            ErrorCode::kUnsupported);
  json = tiny_sd3_config().to_diffusers_json();
  json["num_layers"] = "two";
  EXPECT_EQ(test::error_code_of([&] { Sd3Config::from_diffusers_json(json); }),
            ErrorCode::kCorruptFile);
  json = tiny_sd3_config().to_diffusers_json();
  json["dual_attention_layers"] = {5};
  EXPECT_EQ(test::error_code_of([&] { Sd3Config::from_diffusers_json(json); }),
            ErrorCode::kUnsupported);
}

TEST(Sd3Keys, RulesCoverTheLayoutInOrder) {
  for (const Sd3Config& config : {sd35_medium(), tiny_sd3_config(true, true)}) {
    const auto layout = sd3_transformer_layout(config);
    const auto rules = sd3_key_rules(config);
    ASSERT_EQ(rules.size(), layout.size());
    for (size_t i = 0; i < rules.size(); ++i) EXPECT_EQ(rules[i].original, layout[i].name);
  }
}

TEST(Sd3Keys, DiffusersNamesOfOneBlock) {
  const auto rules = sd3_key_rules(tiny_sd3_config(true, true));
  const auto rule = [&](const std::string& name) {
    return *std::find_if(rules.begin(), rules.end(),
                         [&](const KeyRule& r) { return r.original == name; });
  };
  EXPECT_EQ(rule("joint_blocks.0.context_block.attn.qkv.weight").diffusers,
            (std::vector<std::string>{"transformer_blocks.0.attn.add_q_proj.weight",
                                      "transformer_blocks.0.attn.add_k_proj.weight",
                                      "transformer_blocks.0.attn.add_v_proj.weight"}));
  EXPECT_EQ(rule("joint_blocks.0.x_block.attn2.ln_k.weight").diffusers,
            (std::vector<std::string>{"transformer_blocks.0.attn2.norm_k.weight"}));
  EXPECT_TRUE(rule("joint_blocks.1.context_block.adaLN_modulation.1.bias").swap_halves);
  EXPECT_FALSE(rule("joint_blocks.0.context_block.adaLN_modulation.1.bias").swap_halves);
  EXPECT_TRUE(rule("final_layer.adaLN_modulation.1.weight").swap_halves);
}

TEST(Sd3Keys, RoundTripThroughDiffusersNames) {
  const Sd3Config config = tiny_sd3_config(true, true);
  const std::vector<RawTensor> original =
      tiny_random_tensors(sd3_transformer_layout(config), 5, 0.5);
  const std::vector<RawTensor> diffusers = sd3_original_to_diffusers(config, original);
  EXPECT_GT(diffusers.size(), original.size());
  const auto find = [&](const std::string& name) {
    return *std::find_if(diffusers.begin(), diffusers.end(),
                         [&](const RawTensor& t) { return t.name == name; });
  };
  EXPECT_EQ(find("transformer_blocks.1.attn.to_v.weight").shape, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(find("norm_out.linear.bias").shape, (std::vector<int64_t>{64}));
  const std::vector<RawTensor> back = sd3_diffusers_to_original(config, diffusers);
  ASSERT_EQ(back.size(), original.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].name, original[i].name);
    EXPECT_EQ(back[i].shape, original[i].shape) << original[i].name;
    EXPECT_EQ(back[i].bytes, original[i].bytes) << original[i].name;
  }
}

TEST(Sd3Keys, MissingAndUnexpectedTensorsAreNamed) {
  const Sd3Config config = tiny_sd3_config();
  std::vector<RawTensor> original = tiny_random_tensors(sd3_transformer_layout(config), 5);
  std::vector<RawTensor> extra = original;
  extra.push_back({"register", "F32", {1}, {0, 0, 0, 0}});
  Error error = test::error_of([&] { sd3_original_to_diffusers(config, extra); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("register"), std::string::npos);

  std::vector<RawTensor> diffusers = sd3_original_to_diffusers(config, original);
  diffusers.erase(std::remove_if(diffusers.begin(), diffusers.end(),
                                 [](const RawTensor& t) {
                                   return t.name == "transformer_blocks.0.attn.add_k_proj.bias";
                                 }),
                  diffusers.end());
  error = test::error_of([&] { sd3_diffusers_to_original(config, diffusers); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("transformer_blocks.0.attn.add_k_proj.bias"),
            std::string::npos);
}

TEST(Sd3Keys, SingleFilePrefix) {
  EXPECT_TRUE(has_single_file_prefix({"text_encoders.t5xxl.x", "model.diffusion_model.pos_embed"}));
  EXPECT_FALSE(has_single_file_prefix({"pos_embed", "joint_blocks.0.x_block.attn.qkv.weight"}));
  EXPECT_EQ(strip_single_file_prefix("model.diffusion_model.pos_embed", true), "pos_embed");
  EXPECT_EQ(strip_single_file_prefix("first_stage_model.decoder.conv_in.weight", true),
            std::nullopt);
  EXPECT_EQ(strip_single_file_prefix("pos_embed", false), "pos_embed");
}

}  // namespace
}  // namespace df::engine::sd3
