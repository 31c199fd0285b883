// Tests of the weight layouts against real diffusers/transformers state dicts (tiny and full size).
#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

using nlohmann::json;
using Shape = std::vector<int64_t>;

std::map<std::string, Shape> by_name(const std::vector<TensorShape>& layout) {
  std::map<std::string, Shape> shapes;
  for (const auto& entry : layout) {
    EXPECT_TRUE(shapes.emplace(entry.name, entry.shape).second) << "duplicate " << entry.name;
  }
  return shapes;
}

Shape shape_of(const std::map<std::string, Shape>& shapes, const std::string& name) {
  const auto it = shapes.find(name);
  if (it == shapes.end()) {
    ADD_FAILURE() << "missing tensor " << name;
    return {};
  }
  return it->second;
}

UNetConfig tiny_sd1_unet() {
  return UNetConfig::from_json(json::parse(R"({
    "block_out_channels": [32, 64], "layers_per_block": 2, "sample_size": 32,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "cross_attention_dim": 32, "attention_head_dim": 8, "norm_num_groups": 32})"));
}

TEST(WeightLayout, TinySd1Unet) {
  const auto shapes = by_name(unet_tensor_layout(tiny_sd1_unet()));
  EXPECT_EQ(shapes.size(), 304u);
  EXPECT_EQ(shape_of(shapes, "conv_in.weight"), (Shape{32, 4, 3, 3}));
  EXPECT_EQ(shape_of(shapes, "time_embedding.linear_1.weight"), (Shape{128, 32}));
  EXPECT_EQ(shape_of(shapes, "mid_block.attentions.0.proj_in.weight"), (Shape{64, 64, 1, 1}));
  EXPECT_EQ(shape_of(shapes, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"),
            (Shape{64, 32}));
  EXPECT_EQ(shape_of(shapes, "up_blocks.0.resnets.2.conv_shortcut.weight"), (Shape{64, 96, 1, 1}));
  EXPECT_EQ(shape_of(shapes, "up_blocks.1.resnets.0.conv1.weight"), (Shape{32, 96, 3, 3}));
  EXPECT_EQ(shape_of(shapes, "conv_out.weight"), (Shape{4, 32, 3, 3}));
  EXPECT_FALSE(shapes.contains("add_embedding.linear_1.weight"));
  EXPECT_FALSE(shapes.contains("down_blocks.0.attentions.0.norm.weight"));
}

TEST(WeightLayout, TinySd2UnetUsesLinearProjections) {
  const auto config = UNetConfig::from_json(json::parse(R"({
    "block_out_channels": [32, 64], "layers_per_block": 2,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 32, "attention_head_dim": [2, 4], "use_linear_projection": true})"));
  const auto shapes = by_name(unet_tensor_layout(config));
  EXPECT_EQ(shapes.size(), 434u);
  EXPECT_EQ(shape_of(shapes, "down_blocks.0.attentions.1.proj_out.weight"), (Shape{32, 32}));
  EXPECT_EQ(shape_of(shapes, "up_blocks.1.attentions.2.transformer_blocks.0.ff.net.0.proj.weight"),
            (Shape{256, 32}));
}

TEST(WeightLayout, TinySdxlUnet) {
  const auto config = UNetConfig::from_json(json::parse(R"({
    "block_out_channels": [32, 64], "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "attention_head_dim": [2, 4], "use_linear_projection": true,
    "addition_embed_type": "text_time", "addition_time_embed_dim": 8,
    "transformer_layers_per_block": [1, 2], "projection_class_embeddings_input_dim": 80,
    "cross_attention_dim": 64})"));
  const auto shapes = by_name(unet_tensor_layout(config));
  EXPECT_EQ(shapes.size(), 428u);
  EXPECT_EQ(shape_of(shapes, "add_embedding.linear_1.weight"), (Shape{128, 80}));
  EXPECT_EQ(shape_of(shapes, "down_blocks.1.attentions.0.proj_in.weight"), (Shape{64, 64}));
  EXPECT_EQ(shape_of(shapes, "mid_block.attentions.0.transformer_blocks.1.ff.net.2.weight"),
            (Shape{64, 256}));
  EXPECT_EQ(shape_of(shapes, "up_blocks.0.attentions.2.transformer_blocks.1.attn2.to_v.weight"),
            (Shape{64, 64}));
  EXPECT_FALSE(shapes.contains("up_blocks.0.attentions.0.transformer_blocks.2.norm1.weight"));
}

TEST(WeightLayout, Sd15Unet) {
  const auto config = UNetConfig::from_json(json::parse(R"({
    "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768,
    "attention_head_dim": 8, "layers_per_block": 2,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"]})"));
  const auto shapes = by_name(unet_tensor_layout(config));
  EXPECT_EQ(shapes.size(), 686u);
  EXPECT_EQ(shape_of(shapes, "up_blocks.1.resnets.2.conv1.weight"), (Shape{1280, 1920, 3, 3}));
  EXPECT_EQ(shape_of(shapes, "down_blocks.2.attentions.1.proj_in.weight"),
            (Shape{1280, 1280, 1, 1}));
  EXPECT_EQ(shape_of(shapes, "up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k.weight"),
            (Shape{320, 768}));
}

TEST(WeightLayout, SdxlBaseUnet) {
  const auto config = UNetConfig::from_json(json::parse(R"({
    "block_out_channels": [320, 640, 1280], "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "attention_head_dim": [5, 10, 20], "use_linear_projection": true,
    "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
    "transformer_layers_per_block": [1, 2, 10], "projection_class_embeddings_input_dim": 2816,
    "cross_attention_dim": 2048})"));
  const auto shapes = by_name(unet_tensor_layout(config));
  EXPECT_EQ(shapes.size(), 1680u);
  EXPECT_EQ(shape_of(shapes, "add_embedding.linear_1.weight"), (Shape{1280, 2816}));
  EXPECT_EQ(shape_of(shapes, "up_blocks.0.resnets.2.conv1.weight"), (Shape{1280, 1920, 3, 3}));
  EXPECT_EQ(shape_of(shapes, "mid_block.attentions.0.transformer_blocks.9.ff.net.0.proj.weight"),
            (Shape{10240, 1280}));
  EXPECT_EQ(shape_of(shapes, "up_blocks.1.attentions.0.proj_in.weight"), (Shape{640, 640}));
}

TEST(WeightLayout, UnetRejectsUnknownBlocksAndMismatchedLists) {
  UNetConfig config = tiny_sd1_unet();
  config.down_block_types[0] = "SimpleCrossAttnDownBlock2D";
  try {
    unet_tensor_layout(config);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
  config = tiny_sd1_unet();
  config.num_attention_heads.pop_back();
  try {
    unet_tensor_layout(config);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(WeightLayout, TinyVae) {
  const auto config = VaeConfig::from_json(json::parse(R"({
    "block_out_channels": [32, 32, 64, 64], "layers_per_block": 1, "latent_channels": 4})"));
  const auto shapes = by_name(vae_tensor_layout(config));
  EXPECT_EQ(shapes.size(), 180u);
  EXPECT_EQ(shape_of(shapes, "encoder.down_blocks.2.resnets.0.conv_shortcut.weight"),
            (Shape{64, 32, 1, 1}));
  EXPECT_EQ(shape_of(shapes, "decoder.up_blocks.2.resnets.0.conv_shortcut.weight"),
            (Shape{32, 64, 1, 1}));
  EXPECT_EQ(shape_of(shapes, "decoder.up_blocks.1.resnets.1.conv1.weight"), (Shape{64, 64, 3, 3}));
  EXPECT_EQ(shape_of(shapes, "encoder.conv_out.weight"), (Shape{8, 64, 3, 3}));
  EXPECT_EQ(shape_of(shapes, "decoder.mid_block.attentions.0.to_out.0.bias"), (Shape{64}));
  EXPECT_EQ(shape_of(shapes, "quant_conv.weight"), (Shape{8, 8, 1, 1}));
  EXPECT_FALSE(shapes.contains("decoder.up_blocks.3.upsamplers.0.conv.weight"));
}

TEST(WeightLayout, SdVae) {
  const auto config = VaeConfig::from_json(json::parse(R"({
    "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2})"));
  const auto shapes = by_name(vae_tensor_layout(config));
  EXPECT_EQ(shapes.size(), 248u);
  EXPECT_EQ(shape_of(shapes, "decoder.up_blocks.2.resnets.0.conv_shortcut.weight"),
            (Shape{256, 512, 1, 1}));
  EXPECT_EQ(shape_of(shapes, "encoder.down_blocks.1.resnets.0.conv_shortcut.weight"),
            (Shape{256, 128, 1, 1}));
}

TEST(WeightLayout, TinyClipTextEncoders) {
  const json tiny = json::parse(R"({"hidden_size": 32, "intermediate_size": 37,
    "num_attention_heads": 4, "num_hidden_layers": 5, "vocab_size": 49408, "projection_dim": 32})");
  const auto plain = by_name(clip_text_tensor_layout(ClipTextConfig::from_json(tiny)));
  EXPECT_EQ(plain.size(), 84u);
  EXPECT_EQ(shape_of(plain, "text_model.embeddings.token_embedding.weight"), (Shape{49408, 32}));
  EXPECT_EQ(shape_of(plain, "text_model.embeddings.position_embedding.weight"), (Shape{77, 32}));
  EXPECT_EQ(shape_of(plain, "text_model.encoder.layers.4.mlp.fc1.weight"), (Shape{37, 32}));
  EXPECT_EQ(shape_of(plain, "text_model.final_layer_norm.bias"), (Shape{32}));
  EXPECT_FALSE(plain.contains("text_projection.weight"));

  json with_projection = tiny;
  with_projection["architectures"] = {"CLIPTextModelWithProjection"};
  const auto projected =
      by_name(clip_text_tensor_layout(ClipTextConfig::from_json(with_projection)));
  EXPECT_EQ(projected.size(), 85u);
  EXPECT_EQ(shape_of(projected, "text_projection.weight"), (Shape{32, 32}));
}

TEST(WeightLayout, ClipBigG) {
  const auto config = ClipTextConfig::from_json(json::parse(R"({"hidden_size": 1280,
    "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32,
    "projection_dim": 1280, "architectures": ["CLIPTextModelWithProjection"]})"));
  const auto shapes = by_name(clip_text_tensor_layout(config));
  EXPECT_EQ(shapes.size(), 517u);
  EXPECT_EQ(shape_of(shapes, "text_projection.weight"), (Shape{1280, 1280}));
  EXPECT_EQ(shape_of(shapes, "text_model.encoder.layers.31.mlp.fc1.weight"), (Shape{5120, 1280}));
}

}  // namespace
}  // namespace df::engine
