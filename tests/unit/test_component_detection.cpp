// Standalone UNet and text-encoder files: naming, family, config and kind detection on small
// synthetic safetensors files (only the shapes matter, so most tensors are U8 zeros).
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "engine/component_detection.h"
#include "engine/tiny_model.h"
#include "engine/weight_layout.h"
#include "test_support.h"

namespace df::engine {
namespace {

using Shapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;

int64_t elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

class ComponentDetectionTest : public ::testing::Test {
 protected:
  // A file of U8 zeros with these names and shapes.
  TensorFile write(const std::string& name, const Shapes& shapes,
                        const std::map<std::string, std::string>& metadata = {}) {
    std::vector<RawTensor> tensors;
    for (const auto& [tensor, shape] : shapes) {
      tensors.push_back({tensor, "U8", shape, std::vector<uint8_t>(elements(shape))});
    }
    const std::string path = (dir_.path() / name).string();
    write_safetensors(path, tensors, metadata);
    return TensorFile::open(path);
  }

  // The family markers of an LDM UNet with `context` wide cross-attention.
  static Shapes ldm_unet(const std::string& prefix, int context, bool linear, bool label) {
    Shapes shapes = {
        {prefix + "input_blocks.0.0.weight", {320, 4, 3, 3}},
        {prefix + "middle_block.1.transformer_blocks.0.attn2.to_k.weight", {1280, context}},
        {prefix + "middle_block.1.proj_in.weight",
         linear ? std::vector<int64_t>{1280, 1280} : std::vector<int64_t>{1280, 1280, 1, 1}}};
    if (label) shapes.push_back({prefix + "label_emb.0.0.weight", {1280, 2816}});
    return shapes;
  }

  // A tiny diffusers-named UNet of `family` with random weights.
  TensorFile tiny_diffusers_unet(Family family) {
    const UNetConfig config = tiny_pipeline_config(family).unet;
    const std::string path = (dir_.path() / (family_name(family) + ".safetensors")).string();
    write_safetensors(path, tiny_random_tensors(unet_tensor_layout(config), 1));
    return TensorFile::open(path);
  }

  test::TestDir dir_{"df_component_detection_"};
};

TEST_F(ComponentDetectionTest, LdmUNetsGetTheirFamilyFromTheContextWidthAndLabelEmbedding) {
  struct Case {
    int context;
    bool linear, label;
    Family family;
  };
  const std::vector<Case> cases = {{768, false, false, Family::kSD1},
                                   {1024, true, false, Family::kSD2},
                                   {2048, true, true, Family::kSDXL},
                                   {1280, true, true, Family::kSDXLRefiner}};
  for (const std::string prefix : {"", "model.diffusion_model."}) {
    for (const auto& c : cases) {
      const auto file = write("unet.safetensors", ldm_unet(prefix, c.context, c.linear, c.label));
      const UNetFileLayout layout = detect_unet_layout(file);
      EXPECT_EQ(layout.naming, UNetNaming::kLdm);
      EXPECT_EQ(layout.prefix, prefix);
      EXPECT_EQ(detect_unet_family(file, layout), c.family) << c.context;
    }
  }
}

TEST_F(ComponentDetectionTest, SmallUNetsGetTheirFamilyFromTheirStructure) {
  for (Family family : {Family::kSD1, Family::kSD2, Family::kSDXL}) {
    const auto file = tiny_diffusers_unet(family);
    const UNetFileLayout layout = detect_unet_layout(file);
    EXPECT_EQ(layout.naming, UNetNaming::kDiffusers);
    EXPECT_EQ(layout.prefix, "");
    EXPECT_EQ(detect_unet_family(file, layout), family) << family_name(family);
  }
}

TEST_F(ComponentDetectionTest, DiffusersUNetConfigsAreInferredFromShapes) {
  const UNetConfig expected = tiny_pipeline_config(Family::kSD1).unet;
  const UNetConfig inferred =
      infer_diffusers_unet_config(tiny_diffusers_unet(Family::kSD1), "", Family::kSD1);
  EXPECT_EQ(inferred.block_out_channels, expected.block_out_channels);
  EXPECT_EQ(inferred.down_block_types, expected.down_block_types);
  EXPECT_EQ(inferred.up_block_types, expected.up_block_types);
  EXPECT_EQ(inferred.layers_per_block, expected.layers_per_block);
  EXPECT_EQ(inferred.num_attention_heads, expected.num_attention_heads);
  EXPECT_EQ(inferred.transformer_layers_per_block, expected.transformer_layers_per_block);
  EXPECT_EQ(inferred.cross_attention_dim, expected.cross_attention_dim);
  EXPECT_EQ(inferred.use_linear_projection, expected.use_linear_projection);
  EXPECT_EQ(inferred.in_channels, 4);
  EXPECT_EQ(inferred.out_channels, 4);
  EXPECT_TRUE(inferred.addition_embed_type.empty());

  const auto sdxl = tiny_diffusers_unet(Family::kSDXL);
  // 32 channels cannot hold 64-wide heads: such models need their config in the metadata.
  const Error error = test::error_of([&] { infer_diffusers_unet_config(sdxl, "", Family::kSDXL); });
  EXPECT_EQ(error.code(), ErrorCode::kUnsupported);
  EXPECT_NE(std::string(error.what()).find("metadata"), std::string::npos) << error.what();
}

TEST_F(ComponentDetectionTest, TheLastTransformerNormBiasIsNamedInEitherNaming) {
  UNetConfig config;
  config.block_out_channels = {320, 640, 1280, 1280};
  config.layers_per_block = 2;
  EXPECT_EQ(last_transformer_norm_bias({"model.diffusion_model.", UNetNaming::kLdm}, config),
            "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias");
  EXPECT_EQ(last_transformer_norm_bias({"", UNetNaming::kDiffusers}, config),
            "up_blocks.3.attentions.2.transformer_blocks.0.norm1.bias");
}

TEST_F(ComponentDetectionTest, FilesWithoutAUNetAreRefusedNamingWhatTheyHold) {
  const auto file = write("lora.safetensors", {{"lora_unet_down.alpha", {1}}});
  const Error error = test::error_of([&] { detect_unet_layout(file); });
  EXPECT_EQ(error.code(), ErrorCode::kUnsupported);
  EXPECT_NE(std::string(error.what()).find("lora_unet_down.alpha"), std::string::npos);
}

Shapes transformers_encoder(const std::string& base, int width, bool projection) {
  Shapes shapes = {{base + "embeddings.token_embedding.weight", {10, width}},
                   {base + "encoder.layers.0.mlp.fc1.weight", {4 * width, width}},
                   {base + "encoder.layers.1.mlp.fc1.weight", {4 * width, width}}};
  if (projection) shapes.push_back({"text_projection.weight", {width, width}});
  return shapes;
}

Shapes open_clip_encoder(int width, bool projection) {
  Shapes shapes = {{"token_embedding.weight", {10, width}},
                   {"transformer.resblocks.0.mlp.c_fc.weight", {4 * width, width}}};
  if (projection) shapes.push_back({"text_projection", {width, width}});
  return shapes;
}

TEST_F(ComponentDetectionTest, TextEncodersOfTheRealWidthsGetTheirKindFromIt) {
  auto l = detect_text_encoder(write("l.safetensors", transformers_encoder("text_model.", 768, true)));
  EXPECT_EQ(l.kind, TextEncoderKind::kClipL);  // ComfyUI's clip_l files may carry a projection
  EXPECT_EQ(l.naming, ClipNamingScheme::kTransformers);
  EXPECT_EQ(l.layers, 2);
  auto g = detect_text_encoder(write("g.safetensors", transformers_encoder("", 1280, true)));
  EXPECT_EQ(g.kind, TextEncoderKind::kOpenClipG);
  EXPECT_TRUE(g.has_projection);
  auto h = detect_text_encoder(write("h.safetensors", open_clip_encoder(1024, true)));
  EXPECT_EQ(h.kind, TextEncoderKind::kOpenClipH);
  EXPECT_EQ(h.naming, ClipNamingScheme::kOpenClip);
  EXPECT_EQ(h.hidden_size, 1024);
}

TEST_F(ComponentDetectionTest, SmallTextEncodersGetTheirKindFromTheStoredConfigOrNaming) {
  const auto config = [](const char* act, const char* architecture) {
    return std::map<std::string, std::string>{
        {"dreamforge.text_encoder_config", std::string("{\"hidden_act\": \"") + act +
                                               "\", \"architectures\": [\"" + architecture +
                                               "\"]}"}};
  };
  EXPECT_EQ(detect_text_encoder(write("a.safetensors", open_clip_encoder(32, true),
                                      config("quick_gelu", "CLIPTextModel")))
                .kind,
            TextEncoderKind::kClipL);
  EXPECT_EQ(detect_text_encoder(write("b.safetensors", transformers_encoder("", 32, false),
                                      config("gelu", "CLIPTextModelWithProjection")))
                .kind,
            TextEncoderKind::kOpenClipG);
  EXPECT_EQ(detect_text_encoder(write("c.safetensors", open_clip_encoder(32, true),
                                      config("gelu", "CLIPTextModel")))
                .kind,
            TextEncoderKind::kOpenClipH);
  EXPECT_EQ(detect_text_encoder(write("d.safetensors", transformers_encoder("", 32, false))).kind,
            TextEncoderKind::kClipL);
  EXPECT_EQ(detect_text_encoder(write("e.safetensors", open_clip_encoder(32, true))).kind,
            TextEncoderKind::kOpenClipG);
  EXPECT_EQ(detect_text_encoder(write("f.safetensors", open_clip_encoder(32, false))).kind,
            TextEncoderKind::kOpenClipH);
  EXPECT_EQ(text_encoder_kind_name(TextEncoderKind::kOpenClipH), "CLIP-H");
}

TEST_F(ComponentDetectionTest, FilesWithoutATextEncoderAreRefused) {
  const auto file = write("unet.safetensors", ldm_unet("", 768, false, false));
  EXPECT_EQ(test::error_code_of([&] { detect_text_encoder(file); }), ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace df::engine
