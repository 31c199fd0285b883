// FLUX.1 transformer config, BFL tensor layout and the diffusers key map (torch-free parts).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/family/flux/flux_config.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/tiny_model.h"
#include "test_support.h"

namespace df::engine::flux {
namespace {

using Shape = std::vector<int64_t>;

KeyShapes shapes_of(const std::vector<TensorShape>& layout) {
  KeyShapes shapes;
  for (const TensorShape& tensor : layout) shapes.emplace(tensor.name, tensor.shape);
  return shapes;
}

FluxConfig flux1_dev() { return FluxConfig{}; }

FluxConfig flux1_schnell() {
  FluxConfig config;
  config.guidance_embed = false;
  return config;
}

void expect_same_config(const FluxConfig& a, const FluxConfig& b) {
  EXPECT_EQ(a.to_diffusers_json(), b.to_diffusers_json());
  EXPECT_DOUBLE_EQ(a.mlp_ratio, b.mlp_ratio);
  EXPECT_DOUBLE_EQ(a.theta, b.theta);
}

TEST(FluxLayout, RealDevHasFlux1DevTensorsAndShapes) {
  const auto layout = flux_transformer_layout(flux1_dev());
  EXPECT_EQ(layout.size(), 780u);
  const KeyShapes shapes = shapes_of(layout);
  EXPECT_EQ(shapes.size(), layout.size());
  const std::map<std::string, Shape> known = {
      {"img_in.weight", {3072, 64}},
      {"txt_in.weight", {3072, 4096}},
      {"time_in.in_layer.weight", {3072, 256}},
      {"vector_in.in_layer.weight", {3072, 768}},
      {"guidance_in.out_layer.weight", {3072, 3072}},
      {"double_blocks.0.img_mod.lin.weight", {18432, 3072}},
      {"double_blocks.18.txt_attn.qkv.weight", {9216, 3072}},
      {"double_blocks.18.txt_attn.qkv.bias", {9216}},
      {"double_blocks.0.img_attn.norm.query_norm.scale", {128}},
      {"double_blocks.0.img_mlp.0.weight", {12288, 3072}},
      {"double_blocks.0.img_mlp.2.weight", {3072, 12288}},
      {"single_blocks.37.linear1.weight", {21504, 3072}},
      {"single_blocks.37.linear2.weight", {3072, 15360}},
      {"single_blocks.37.modulation.lin.weight", {9216, 3072}},
      {"single_blocks.0.norm.key_norm.scale", {128}},
      {"final_layer.linear.weight", {64, 3072}},
      {"final_layer.adaLN_modulation.1.weight", {6144, 3072}},
  };
  for (const auto& [name, shape] : known) {
    ASSERT_TRUE(shapes.count(name)) << name;
    EXPECT_EQ(shapes.at(name), shape) << name;
  }
  EXPECT_FALSE(shapes.count("single_blocks.38.linear1.weight"));
}

TEST(FluxLayout, SchnellLacksGuidanceIn) {
  const KeyShapes shapes = shapes_of(flux_transformer_layout(flux1_schnell()));
  EXPECT_EQ(shapes.size(), 776u);
  EXPECT_FALSE(shapes.count("guidance_in.in_layer.weight"));
}

TEST(FluxLayout, TinyConfigIsConsistent) {
  for (bool guidance : {true, false}) {
    const FluxConfig tiny = tiny_flux_config(guidance);
    EXPECT_NO_THROW(tiny.validate());
    EXPECT_EQ(tiny.latent_channels(), 16);
    EXPECT_EQ(tiny.head_dim(), 16);
    const auto layout = flux_transformer_layout(tiny);
    EXPECT_EQ(layout.size(), (guidance ? 16u : 12u) + 24u + 8u + 4u);
  }
}

TEST(FluxConfigTest, InfersRealAndTinyConfigsFromKeys) {
  for (const FluxConfig& config :
       {flux1_dev(), flux1_schnell(), tiny_flux_config(true), tiny_flux_config(false)}) {
    expect_same_config(FluxConfig::infer_from_keys(shapes_of(flux_transformer_layout(config))),
                       config);
  }
}

TEST(FluxConfigTest, InfersFromSingleBlocksOnly) {
  FluxConfig config = tiny_flux_config(false);
  config.depth = 0;
  config.depth_single_blocks = 3;
  expect_same_config(FluxConfig::infer_from_keys(shapes_of(flux_transformer_layout(config))),
                     config);
}

TEST(FluxConfigTest, InferenceNamesAMissingTensor) {
  KeyShapes shapes = shapes_of(flux_transformer_layout(tiny_flux_config(true)));
  shapes.erase("txt_in.weight");
  const Error error = test::error_of([&] { FluxConfig::infer_from_keys(shapes); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("txt_in.weight"), std::string::npos);
}

TEST(FluxConfigTest, InferenceRefusesAQNormThatDoesNotDivideTheWidth) {
  KeyShapes shapes = shapes_of(flux_transformer_layout(tiny_flux_config(true)));
  shapes["double_blocks.0.img_attn.norm.query_norm.scale"] = {5};
  EXPECT_EQ(test::error_code_of([&] { FluxConfig::infer_from_keys(shapes); }),
            ErrorCode::kCorruptFile);
}

TEST(FluxConfigTest, DiffusersJsonRoundTrip) {
  for (const FluxConfig& config : {flux1_dev(), tiny_flux_config(false)}) {
    expect_same_config(FluxConfig::from_diffusers_json(config.to_diffusers_json()), config);
  }
}

TEST(FluxConfigTest, ReadsDiffusersDevConfig) {
  const auto json = nlohmann::json::parse(R"({
    "_class_name": "FluxTransformer2DModel", "attention_head_dim": 128,
    "axes_dims_rope": [16, 56, 56], "guidance_embeds": true, "in_channels": 64,
    "joint_attention_dim": 4096, "num_attention_heads": 24, "num_layers": 19,
    "num_single_layers": 38, "out_channels": null, "patch_size": 1,
    "pooled_projection_dim": 768})");
  expect_same_config(FluxConfig::from_diffusers_json(json), flux1_dev());
}

TEST(FluxConfigTest, DiffusersJsonErrors) {
  nlohmann::json json = tiny_flux_config(true).to_diffusers_json();
  json.erase("num_layers");
  EXPECT_EQ(test::error_code_of([&] { FluxConfig::from_diffusers_json(json); }),
            ErrorCode::kCorruptFile);
  json = tiny_flux_config(true).to_diffusers_json();
  json["axes_dims_rope"] = {4, 4, 4};
  EXPECT_EQ(test::error_code_of([&] { FluxConfig::from_diffusers_json(json); }),
            ErrorCode::kInvalidArgument);
  json = tiny_flux_config(true).to_diffusers_json();
  json["patch_size"] = 2;
  EXPECT_EQ(test::error_code_of([&] { FluxConfig::from_diffusers_json(json); }),
            ErrorCode::kUnsupported);
}

TEST(FluxKeyMap, DiffusersLayoutOfTheRealModel) {
  const FluxConfig config = flux1_dev();
  const KeyShapes diffusers = shapes_of(
      assembled_layout(flux_transformer_layout(config), flux_diffusers_from_bfl(config)));
  EXPECT_EQ(diffusers.at("transformer_blocks.0.attn.to_q.weight"), (Shape{3072, 3072}));
  EXPECT_EQ(diffusers.at("transformer_blocks.0.attn.add_v_proj.bias"), (Shape{3072}));
  EXPECT_EQ(diffusers.at("transformer_blocks.0.attn.norm_added_k.weight"), (Shape{128}));
  EXPECT_EQ(diffusers.at("single_transformer_blocks.37.proj_mlp.weight"), (Shape{12288, 3072}));
  EXPECT_EQ(diffusers.at("single_transformer_blocks.37.proj_out.weight"), (Shape{3072, 15360}));
  EXPECT_EQ(diffusers.at("norm_out.linear.weight"), (Shape{6144, 3072}));
  EXPECT_EQ(diffusers.at("time_text_embed.guidance_embedder.linear_1.weight"),
            (Shape{3072, 256}));
  expect_same_config(infer_from_diffusers_keys(diffusers), config);
}

TEST(FluxKeyMap, RawRoundTripKeepsEveryByte) {
  for (bool guidance : {true, false}) {
    const FluxConfig config = tiny_flux_config(guidance);
    const auto bfl = tiny_random_tensors(flux_transformer_layout(config), 7);
    const auto diffusers = assemble_raw(bfl, flux_diffusers_from_bfl(config));
    const auto back = assemble_raw(diffusers, flux_bfl_from_diffusers(config));
    ASSERT_EQ(back.size(), bfl.size());
    std::map<std::string, const RawTensor*> by_name;
    for (const RawTensor& t : back) by_name[t.name] = &t;
    for (const RawTensor& t : bfl) {
      ASSERT_TRUE(by_name.count(t.name)) << t.name;
      EXPECT_EQ(by_name[t.name]->shape, t.shape) << t.name;
      EXPECT_EQ(by_name[t.name]->bytes, t.bytes) << t.name;
    }
  }
}

TEST(FluxKeyMap, SplitsFusedProjectionsAndSwapsTheFinalModulation) {
  const FluxConfig config = tiny_flux_config(true);
  const int64_t h = config.hidden_size;
  const auto bfl = tiny_random_tensors(flux_transformer_layout(config), 3);
  std::map<std::string, RawTensor> d;
  for (RawTensor& t : assemble_raw(bfl, flux_diffusers_from_bfl(config))) d[t.name] = t;
  const auto find = [&](const std::string& name) {
    return *std::find_if(bfl.begin(), bfl.end(),
                         [&](const RawTensor& t) { return t.name == name; });
  };
  const size_t row = static_cast<size_t>(h) * 4;  // bytes of one F32 row of width h
  const RawTensor qkv = find("double_blocks.0.img_attn.qkv.weight");
  const RawTensor& k = d.at("transformer_blocks.0.attn.to_k.weight");
  EXPECT_TRUE(std::equal(k.bytes.begin(), k.bytes.end(), qkv.bytes.begin() + h * row));
  const RawTensor linear1 = find("single_blocks.0.linear1.weight");
  const RawTensor& mlp = d.at("single_transformer_blocks.0.proj_mlp.weight");
  EXPECT_EQ(mlp.shape, (Shape{config.mlp_hidden(), h}));
  EXPECT_TRUE(std::equal(mlp.bytes.begin(), mlp.bytes.end(), linear1.bytes.begin() + 3 * h * row));
  const RawTensor ada = find("final_layer.adaLN_modulation.1.weight");
  const RawTensor& norm_out = d.at("norm_out.linear.weight");
  // BFL (shift, scale) -> diffusers (scale, shift).
  EXPECT_TRUE(std::equal(norm_out.bytes.begin(), norm_out.bytes.begin() + h * row,
                         ada.bytes.begin() + h * row));
  EXPECT_TRUE(
      std::equal(norm_out.bytes.begin() + h * row, norm_out.bytes.end(), ada.bytes.begin()));
}

TEST(FluxKeyMap, MissingSourceIsNamed) {
  const FluxConfig config = tiny_flux_config(false);
  auto bfl = tiny_random_tensors(flux_transformer_layout(config), 1);
  std::erase_if(bfl, [](const RawTensor& t) { return t.name == "single_blocks.0.linear1.bias"; });
  const Error error =
      test::error_of([&] { assemble_raw(bfl, flux_diffusers_from_bfl(config)); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("single_blocks.0.linear1.bias"), std::string::npos);
}

}  // namespace
}  // namespace df::engine::flux
