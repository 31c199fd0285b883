// Schema tests for the loader, conditioning and model-patch packs: inputs (names, order, types,
// defaults, bounds, choices), outputs, categories and modules as ComfyUI's /object_info shows them.
#include <gtest/gtest.h>

#include "nodes/packs/node_packs.h"

namespace df::nodes {
namespace {

using nlohmann::json;

class CoreNodeSchemas : public ::testing::Test {
 protected:
  CoreNodeSchemas() {
    context.model_files["vae"] = {"vae-ft-mse.safetensors"};
    context.model_files["loras"] = {"style.safetensors"};
    context.model_files["configs"] = {"v1-inference.yaml"};
    context.checkpoints = {"sd15.safetensors"};
    info = graph::object_info(builtin_node_schemas(), context);
  }
  json required(const char* node) const { return info.at(node).at("input").at("required"); }
  json order(const char* node) const { return info.at(node).at("input_order").at("required"); }

  graph::SchemaContext context;
  json info;
};

TEST_F(CoreNodeSchemas, LoadersListTheirModelFolders) {
  EXPECT_EQ(required("VAELoader"), json::parse(R"({"vae_name": [["vae-ft-mse.safetensors"]]})"));
  EXPECT_EQ(info["VAELoader"]["display_name"], "Load VAE");
  EXPECT_EQ(info["VAELoader"]["output"], json::parse(R"(["VAE"])"));

  const json& checkpoint = info["CheckpointLoader"];
  EXPECT_EQ(checkpoint["category"], "advanced/loaders");
  EXPECT_EQ(checkpoint["deprecated"], true);
  EXPECT_EQ(order("CheckpointLoader"), json::parse(R"(["config_name", "ckpt_name"])"));
  EXPECT_EQ(required("CheckpointLoader")["config_name"][0], json::parse(R"(["v1-inference.yaml"])"));

  EXPECT_EQ(order("LoraLoader"),
            json::parse(R"(["model", "clip", "lora_name", "strength_model", "strength_clip"])"));
  EXPECT_EQ(required("LoraLoader")["strength_clip"],
            json::parse(R"(["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01,
                "tooltip": "How strongly to modify the CLIP model. This value can be negative."}])"));
  EXPECT_EQ(required("LoraLoader")["lora_name"],
            json::parse(R"([["style.safetensors"], {"tooltip": "The name of the LoRA."}])"));
  EXPECT_EQ(info["LoraLoader"]["output"], json::parse(R"(["MODEL", "CLIP"])"));
  EXPECT_EQ(info["LoraLoader"]["display_name"], "Load LoRA");
  EXPECT_EQ(required("LoraLoaderModelOnly")["strength_model"],
            json::parse(R"(["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}])"));
  EXPECT_FALSE(info["LoraLoader"].contains("deprecated"));
}

TEST_F(CoreNodeSchemas, ConditioningNodesTakeComfyUisInputs) {
  EXPECT_EQ(required("CLIPSetLastLayer")["stop_at_clip_layer"],
            json::parse(R"(["INT", {"default": -1, "min": -24, "max": -1, "step": 1}])"));
  EXPECT_EQ(order("ConditioningSetArea"),
            json::parse(R"(["conditioning", "width", "height", "x", "y", "strength"])"));
  EXPECT_EQ(required("ConditioningSetArea")["width"],
            json::parse(R"(["INT", {"default": 64, "min": 64, "max": 16384, "step": 8}])"));
  EXPECT_EQ(required("ConditioningSetAreaPercentage")["x"],
            json::parse(R"(["FLOAT", {"default": 0, "min": 0, "max": 1.0, "step": 0.01}])"));
  EXPECT_EQ(required("ConditioningSetMask")["set_cond_area"],
            json::parse(R"([["default", "mask bounds"]])"));
  EXPECT_EQ(required("ConditioningSetTimestepRange")["end"],
            json::parse(R"(["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}])"));
  EXPECT_EQ(info["ConditioningZeroOut"]["category"], "advanced/conditioning");
  EXPECT_EQ(order("CLIPTextEncodeSDXL"),
            json::parse(R"(["clip", "width", "height", "crop_w", "crop_h", "target_width",
                            "target_height", "text_g", "text_l"])"));
  EXPECT_EQ(info["CLIPTextEncodeSDXL"]["python_module"], "comfy_extras.nodes_clip_sdxl");
  EXPECT_EQ(required("CLIPTextEncodeSDXLRefiner")["ascore"],
            json::parse(R"(["FLOAT", {"default": 6.0, "min": 0.0, "max": 1000.0, "step": 0.01}])"));
  for (const char* node : {"ConditioningCombine", "ConditioningConcat", "ConditioningAverage"}) {
    EXPECT_EQ(info[node]["output"], json::parse(R"(["CONDITIONING"])")) << node;
    EXPECT_EQ(info[node]["category"], "conditioning") << node;
  }
}

TEST_F(CoreNodeSchemas, ModelPatchesAndMergesTakeComfyUisInputs) {
  EXPECT_EQ(required("ModelSamplingDiscrete")["sampling"],
            json::parse(R"([["eps", "v_prediction", "lcm", "x0"]])"));
  EXPECT_EQ(required("ModelSamplingDiscrete")["zsnr"], json::parse(R"(["BOOLEAN", {"default": false}])"));
  EXPECT_EQ(required("RescaleCFG")["multiplier"],
            json::parse(R"(["FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.01}])"));
  EXPECT_EQ(order("ModelMergeBlocks"),
            json::parse(R"(["model1", "model2", "input", "middle", "out"])"));
  EXPECT_EQ(required("ModelMergeSubtract")["multiplier"],
            json::parse(R"(["FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}])"));
  EXPECT_EQ(order("CLIPMergeAdd"), json::parse(R"(["clip1", "clip2"])"));
  EXPECT_EQ(info["ModelMergeSimple"]["python_module"], "comfy_extras.nodes_model_merging");
  const json sdxl = order("ModelMergeSDXL");
  EXPECT_EQ(sdxl.size(), 2u + 2 + 9 + 3 + 9 + 1);
  EXPECT_EQ(sdxl[2], "time_embed.");
  EXPECT_EQ(sdxl[3], "label_emb.");
  EXPECT_EQ(sdxl[4], "input_blocks.0");
  EXPECT_EQ(sdxl.back(), "out.");
  EXPECT_EQ(info["ModelMergeSDXL"]["category"], "advanced/model_merging/model_specific");
  EXPECT_EQ(required("DifferentialDiffusion"), json::parse(R"({"model": ["MODEL"]})"));
  EXPECT_EQ(info["DifferentialDiffusion"]["category"], "_for_testing");
  EXPECT_EQ(info["DifferentialDiffusion"]["python_module"], "comfy_extras.nodes_differential_diffusion");
  EXPECT_EQ(order("SetLatentNoiseMask"), json::parse(R"(["samples", "mask"])"));
  EXPECT_EQ(info["SetLatentNoiseMask"]["category"], "latent/inpaint");
  EXPECT_EQ(order("VAEEncodeForInpaint"), json::parse(R"(["pixels", "vae", "mask", "grow_mask_by"])"));
  EXPECT_EQ(required("VAEEncodeForInpaint")["grow_mask_by"],
            json::parse(R"(["INT", {"default": 6, "min": 0, "max": 64, "step": 1}])"));
  EXPECT_EQ(info["VAEEncodeForInpaint"]["display_name"], "VAE Encode (for Inpainting)");
}

}  // namespace
}  // namespace df::nodes
