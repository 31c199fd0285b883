// Z-Image transformer configs and tensor layouts: the real Turbo layout, config inference from
// tensor shapes, diffusers config.json round trips and the ComfyUI <-> diffusers key map.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "test_support.h"
#include "core/error.h"
#include "engine/family/zimage/zimage_config.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/tiny_model.h"

namespace df::engine::zimage {
namespace {

ShapeIndex shapes_of(const std::vector<TensorShape>& layout) {
  ShapeIndex shapes;
  for (const auto& t : layout) shapes.emplace(t.name, t.shape);
  return shapes;
}

void expect_same_architecture(const ZImageConfig& a, const ZImageConfig& b) {
  EXPECT_EQ(a.to_diffusers_json(), b.to_diffusers_json());
  EXPECT_EQ(a.ffn_hidden_dim, b.ffn_hidden_dim);
  EXPECT_EQ(a.timestep_hidden_dim, b.timestep_hidden_dim);
}

void expect_error(ErrorCode code, const std::string& text, const std::function<void()>& action) {
  const Error e = test::error_of(action);
  EXPECT_EQ(e.code(), code);
  EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
}

TEST(ZImageLayout, RealTurboLayoutHasTheCheckpointTensors) {
  const ZImageConfig real;  // the defaults are Z-Image Turbo's
  const ShapeIndex comfy = shapes_of(zimage_transformer_layout(real));
  EXPECT_EQ(comfy.size(), 453u);  // 30 + 2 blocks of 13, 2 context blocks of 11, 15 others
  EXPECT_EQ(zimage_diffusers_layout(real).size(), 521u);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected{
      {"x_embedder.weight", {3840, 64}},
      {"t_embedder.mlp.0.weight", {1024, 256}},
      {"t_embedder.mlp.2.weight", {256, 1024}},
      {"cap_embedder.0.weight", {2560}},
      {"cap_embedder.1.weight", {3840, 2560}},
      {"layers.29.attention.qkv.weight", {11520, 3840}},
      {"layers.29.attention.out.weight", {3840, 3840}},
      {"layers.0.attention.q_norm.weight", {128}},
      {"layers.0.feed_forward.w1.weight", {10240, 3840}},
      {"layers.0.feed_forward.w2.weight", {3840, 10240}},
      {"layers.0.adaLN_modulation.0.weight", {15360, 256}},
      {"noise_refiner.1.adaLN_modulation.0.bias", {15360}},
      {"context_refiner.1.ffn_norm2.weight", {3840}},
      {"final_layer.linear.weight", {64, 3840}},
      {"final_layer.adaLN_modulation.1.weight", {3840, 256}},
      {"x_pad_token", {1, 3840}},
      {"cap_pad_token", {1, 3840}},
  };
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(comfy.count(name)) << name;
    EXPECT_EQ(comfy.at(name), shape) << name;
  }
  EXPECT_FALSE(comfy.count("context_refiner.0.adaLN_modulation.0.weight"));
  EXPECT_FALSE(comfy.count("layers.30.attention_norm1.weight"));
}

TEST(ZImageLayout, InfersTheConfigFromTensorShapes) {
  ZImageConfig grouped = tiny_zimage_config(48);
  grouped.n_kv_heads = 1;
  for (const ZImageConfig& config : {ZImageConfig{}, tiny_zimage_config(), grouped}) {
    const ShapeIndex shapes = shapes_of(zimage_transformer_layout(config));
    expect_same_architecture(ZImageConfig::infer_from_keys(shapes), config);
  }
  const ShapeIndex grouped_shapes = shapes_of(zimage_transformer_layout(grouped));
  EXPECT_EQ(ZImageConfig::infer_from_keys(grouped_shapes).n_kv_heads, 1);
}

TEST(ZImageLayout, InferenceNamesAMissingTensor) {
  ShapeIndex shapes = shapes_of(zimage_transformer_layout(tiny_zimage_config()));
  shapes.erase("cap_embedder.1.weight");
  expect_error(ErrorCode::kCorruptFile, "cap_embedder.1.weight",
               [&] { ZImageConfig::infer_from_keys(shapes); });
}

TEST(ZImageLayout, DiffusersJsonRoundTrip) {
  const ZImageConfig tiny = tiny_zimage_config(40);
  const ZImageConfig back = ZImageConfig::from_diffusers_json(tiny.to_diffusers_json());
  expect_same_architecture(back, tiny);
  const nlohmann::json real = ZImageConfig{}.to_diffusers_json();
  EXPECT_EQ(ZImageConfig::from_diffusers_json(real).ffn_hidden_dim, 10240);
}

TEST(ZImageLayout, DiffusersJsonRefusesWhatItCannotRun) {
  nlohmann::json omni = ZImageConfig{}.to_diffusers_json();
  omni["siglip_feat_dim"] = 1152;
  expect_error(ErrorCode::kUnsupported, "Omni", [&] { ZImageConfig::from_diffusers_json(omni); });
  nlohmann::json bad_axes = ZImageConfig{}.to_diffusers_json();
  bad_axes["axes_dims"] = {32, 48, 40};
  expect_error(ErrorCode::kCorruptFile, "axes_dims",
               [&] { ZImageConfig::from_diffusers_json(bad_axes); });
}

TEST(ZImageLayout, KeyMapRoundTrip) {
  const ZImageConfig config;
  for (const TensorShape& tensor : zimage_transformer_layout(config)) {
    const auto parts = diffusers_parts_of(tensor, config);
    for (size_t i = 0; i < parts.size(); ++i) {
      const ComfyPlace place = comfy_place_of_diffusers_name(parts[i].name);
      EXPECT_EQ(place.name, tensor.name) << parts[i].name;
      EXPECT_EQ(place.qkv_part, parts.size() == 1 ? -1 : static_cast<int>(i)) << parts[i].name;
    }
  }
  EXPECT_EQ(comfy_place_of_diffusers_name("all_x_embedder.2-1.weight").name, "x_embedder.weight");
  EXPECT_EQ(comfy_place_of_diffusers_name("layers.3.attention.to_out.0.weight").name,
            "layers.3.attention.out.weight");
  EXPECT_EQ(comfy_place_of_diffusers_name("layers.3.attention.norm_k.weight").name,
            "layers.3.attention.k_norm.weight");
}

TEST(ZImageLayout, RawTensorsSplitIntoTheDiffusersLayout) {
  const ZImageConfig config = tiny_zimage_config();
  const auto comfy = tiny_random_tensors(zimage_transformer_layout(config), 5);
  const auto diffusers = raw_tensors_to_diffusers(comfy, config);
  const auto layout = zimage_diffusers_layout(config);
  ASSERT_EQ(diffusers.size(), layout.size());
  for (size_t i = 0; i < layout.size(); ++i) {
    EXPECT_EQ(diffusers[i].name, layout[i].name);
    EXPECT_EQ(diffusers[i].shape, layout[i].shape) << layout[i].name;
  }
  const auto qkv = std::find_if(comfy.begin(), comfy.end(),
                                [](const RawTensor& t) {
                                  return t.name == "layers.1.attention.qkv.weight";
                                });
  std::vector<uint8_t> joined;
  for (const char* part : {"to_q", "to_k", "to_v"}) {
    const auto it = std::find_if(diffusers.begin(), diffusers.end(), [&](const RawTensor& t) {
      return t.name == std::string("layers.1.attention.") + part + ".weight";
    });
    ASSERT_NE(it, diffusers.end());
    joined.insert(joined.end(), it->bytes.begin(), it->bytes.end());
  }
  EXPECT_EQ(joined, qkv->bytes);
}

TEST(ZImageLayout, CheckpointNames) {
  EXPECT_EQ(strip_checkpoint_prefix("model.diffusion_model.layers.0.ffn_norm1.weight"),
            "layers.0.ffn_norm1.weight");
  EXPECT_EQ(strip_checkpoint_prefix("x_pad_token"), "x_pad_token");
  EXPECT_TRUE(has_diffusers_names({"cap_pad_token", "all_x_embedder.2-1.weight"}));
  EXPECT_FALSE(has_diffusers_names({"cap_pad_token", "x_embedder.weight"}));
}

}  // namespace
}  // namespace df::engine::zimage
