// Family detection from tensor names and diffusers configs: the SD families by their embedders
// and UNet, FLUX dev/schnell, SD3 and Z-Image by their transformer blocks in either naming.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/family/family_detection.h"
#include "engine/safetensors_file.h"
#include "test_support.h"

namespace df::engine {
namespace {

class FamilyDetection : public ::testing::Test {
 protected:
  // The family of a file holding one float32 scalar per name.
  std::optional<DetectedFamily> of_names(const std::vector<std::string>& names) {
    std::vector<RawTensor> tensors;
    for (const auto& name : names) tensors.push_back({name, "F32", {1}, {0, 0, 0, 0}});
    const std::string path = (dir.path() / "model.safetensors").string();
    write_safetensors(path, tensors);
    return detect_file_family(TensorFile::open(path));
  }

  void write_json(const std::filesystem::path& path, const nlohmann::json& value) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << value.dump();
  }

  test::TestDir dir{"df_family_detection_"};
};

TEST_F(FamilyDetection, SdCheckpointsByTheirEmbedders) {
  EXPECT_EQ(of_names({"model.diffusion_model.input_blocks.0.0.weight"})->registry_name(), "sd1");
  EXPECT_EQ(of_names({"cond_stage_model.model.token_embedding.weight"})->registry_name(), "sd2");
  EXPECT_EQ(of_names({"conditioner.embedders.1.model.ln_final.weight"})->registry_name(), "sdxl");
  EXPECT_EQ(of_names({"conditioner.embedders.0.model.ln_final.weight"})->registry_name(),
            "sdxl_refiner");
  EXPECT_FALSE(of_names({"encoder.conv_in.weight"}).has_value());
}

TEST_F(FamilyDetection, FluxDevAndSchnellInEitherNaming) {
  const auto dev = of_names({"model.diffusion_model.double_blocks.0.img_attn.qkv.weight",
                             "model.diffusion_model.guidance_in.in_layer.weight"});
  EXPECT_EQ(dev->family, Family::kFlux);
  EXPECT_EQ(dev->registry_name(), "flux");
  EXPECT_EQ(of_names({"double_blocks.0.img_attn.qkv.weight"})->registry_name(), "flux_schnell");
  // diffusers names: FLUX's joint blocks look like SD3's; its single blocks decide.
  EXPECT_EQ(of_names({"transformer_blocks.0.attn.add_q_proj.weight",
                      "single_transformer_blocks.0.attn.to_q.weight",
                      "time_text_embed.guidance_embedder.linear_1.weight"})
                ->registry_name(),
            "flux");
}

TEST_F(FamilyDetection, Sd3AndZImage) {
  EXPECT_EQ(of_names({"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight",
                      "text_encoders.clip_l.transformer.text_model.final_layer_norm.weight"})
                ->family,
            Family::kSD3);
  EXPECT_EQ(of_names({"transformer_blocks.0.attn.add_q_proj.weight"})->family, Family::kSD3);
  EXPECT_EQ(of_names({"noise_refiner.0.attention.qkv.weight"})->registry_name(), "zimage");
}

TEST_F(FamilyDetection, DiffusersFoldersByTheirConfigs) {
  write_json(dir.path() / "sdxl" / "model_index.json", {{"_class_name", "StableDiffusionXLPipeline"}});
  write_json(dir.path() / "sdxl" / "unet" / "config.json",
             {{"cross_attention_dim", 2048}, {"addition_embed_type", "text_time"}});
  EXPECT_EQ(detect_folder_family((dir.path() / "sdxl").string())->registry_name(), "sdxl");

  write_json(dir.path() / "flux" / "model_index.json", {{"_class_name", "FluxPipeline"}});
  write_json(dir.path() / "flux" / "transformer" / "config.json",
             {{"_class_name", "FluxTransformer2DModel"}, {"guidance_embeds", false}});
  EXPECT_EQ(detect_folder_family((dir.path() / "flux").string())->registry_name(), "flux_schnell");

  write_json(dir.path() / "zimage" / "config.json", {{"_class_name", "ZImageTransformer2DModel"}});
  EXPECT_EQ(detect_folder_family((dir.path() / "zimage").string())->family, Family::kZImage);
  EXPECT_FALSE(detect_folder_family(dir.path().string()).has_value());
}

}  // namespace
}  // namespace df::engine
