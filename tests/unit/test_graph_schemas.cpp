// Unit tests for the built-in node schemas and the GET /object_info document.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;
using nodes::builtin_node_schemas;
using nodes::supported_samplers;
using nodes::supported_schedulers;

class GraphSchemas : public ::testing::Test {
 protected:
  SchemaContext context{{"v1-5-pruned-emaonly-fp16.safetensors", "sdxl/base.safetensors"},
                        {"cat.png", "dog.jpg"},
                        supported_samplers(),
                        supported_schedulers()};
  json info = object_info(builtin_node_schemas(), context);
};

TEST_F(GraphSchemas, ListsEveryBuiltInNode) {
  for (const char* name :
       {"CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler",
        "KSamplerAdvanced", "VAEDecode", "VAEEncode", "LoadImage", "SaveImage", "PreviewImage",
        "ImageScale"}) {
    ASSERT_TRUE(info.contains(name)) << name;
    EXPECT_EQ(info[name]["name"], name);
    EXPECT_EQ(info[name]["python_module"], "nodes");
    EXPECT_EQ(info[name]["is_input_list"], false);
    EXPECT_EQ(info[name]["search_aliases"], json::array());
  }
}

// The ComfyUI core nodes people's SD workflows use, pack by pack (see each pack's schema tests
// for their inputs).
TEST_F(GraphSchemas, OffersComfyUisCoreNodesForSdWorkflows) {
  for (const char* name :
       {"CheckpointLoader", "VAELoader", "LoraLoader", "LoraLoaderModelOnly", "CLIPSetLastLayer",
        "CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner", "ConditioningCombine",
        "ConditioningConcat", "ConditioningAverage", "ConditioningSetArea",
        "ConditioningSetAreaPercentage", "ConditioningSetAreaStrength", "ConditioningSetMask",
        "ConditioningSetTimestepRange", "ConditioningZeroOut", "ModelSamplingDiscrete",
        "RescaleCFG", "ModelMergeSimple", "ModelMergeAdd", "ModelMergeSubtract",
        "ModelMergeBlocks", "ModelMergeSDXL", "CLIPMergeSimple", "CLIPMergeAdd",
        "CLIPMergeSubtract", "LatentUpscale", "LatentUpscaleBy", "LatentComposite",
        "RepeatLatentBatch", "VAEDecodeTiled", "ImageScaleBy", "ImageBlur", "MaskToImage",
        "InvertMask", "SaveAnimatedWEBP", "PrimitiveInt"}) {
    EXPECT_TRUE(info.contains(name)) << name;
  }
  for (const auto& [name, node] : info.items()) EXPECT_EQ(node["name"], name);
}

TEST_F(GraphSchemas, CheckpointLoaderMatchesComfyUI) {
  const json& node = info["CheckpointLoaderSimple"];
  EXPECT_EQ(node["display_name"], "Load Checkpoint");
  EXPECT_EQ(node["category"], "loaders");
  EXPECT_EQ(node["description"],
            "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.");
  EXPECT_EQ(node["input"]["required"]["ckpt_name"],
            json::parse(R"([["v1-5-pruned-emaonly-fp16.safetensors", "sdxl/base.safetensors"],
                            {"tooltip": "The name of the checkpoint (model) to load."}])"));
  EXPECT_EQ(node["output"], json::parse(R"(["MODEL", "CLIP", "VAE"])"));
  EXPECT_EQ(node["output_name"], node["output"]);
  EXPECT_EQ(node["output_is_list"], json::parse("[false, false, false]"));
  EXPECT_EQ(node["output_tooltips"][2],
            "The VAE model used for encoding and decoding images to and from latent space.");
  EXPECT_EQ(node["output_node"], false);
  EXPECT_FALSE(node["input"].contains("optional"));
  EXPECT_FALSE(node["input"].contains("hidden"));
}

TEST_F(GraphSchemas, KSamplerInputsInOrderWithLimits) {
  const json& node = info["KSampler"];
  EXPECT_EQ(node["input_order"]["required"],
            json::parse(R"(["model", "seed", "steps", "cfg", "sampler_name", "scheduler",
                            "positive", "negative", "latent_image", "denoise"])"));
  const json& seed = node["input"]["required"]["seed"];
  EXPECT_EQ(seed[0], "INT");
  EXPECT_EQ(seed[1]["max"].dump(), "18446744073709551615");
  EXPECT_EQ(seed[1]["min"], 0);
  EXPECT_EQ(seed[1]["tooltip"], "The random seed used for creating the noise.");
  const json& cfg = node["input"]["required"]["cfg"];
  EXPECT_EQ(cfg[1].dump(),
            R"({"default":8.0,"max":100.0,"min":0.0,"round":0.01,"step":0.1,"tooltip":)"
            R"("The Classifier-Free Guidance scale balances creativity and adherence to the )"
            R"(prompt. Higher values result in images more closely matching the prompt however )"
            R"(too high values will negatively impact quality."})");
  EXPECT_EQ(node["input"]["required"]["sampler_name"][0], json(supported_samplers()));
  EXPECT_EQ(node["input"]["required"]["scheduler"][0], json(supported_schedulers()));
  EXPECT_EQ(node["input"]["required"]["latent_image"],
            json::parse(R"(["LATENT", {"tooltip": "The latent image to denoise."}])"));
  EXPECT_EQ(node["description"],
            "Uses the provided model, positive and negative conditioning to denoise the latent "
            "image.");
  EXPECT_EQ(node["output_tooltips"], json::parse(R"(["The denoised latent."])"));
}

TEST_F(GraphSchemas, SamplerListsFollowComfyUIOrder) {
  // Their order against ComfyUI's KSampler.SAMPLERS: Samplers.NamesFollowComfyUiOrder...
  // (the engine's list, which test_sampler_lists checks equal to this one).
  for (const char* core : {"euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral",
                           "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "lcm", "ddim", "uni_pc",
                           "uni_pc_bh2"}) {
    EXPECT_NE(std::find(supported_samplers().begin(), supported_samplers().end(), core),
              supported_samplers().end())
        << core;
  }
  EXPECT_EQ(json(supported_schedulers()),
            json::parse(R"(["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform",
                            "beta", "normal", "linear_quadratic", "kl_optimal"])"));
}

TEST_F(GraphSchemas, InputsWithoutOptionsAreOneElementArrays) {
  const json& advanced = info["KSamplerAdvanced"];
  EXPECT_EQ(advanced["display_name"], "KSampler (Advanced)");
  EXPECT_EQ(advanced["description"], "");
  EXPECT_EQ(advanced["input"]["required"]["model"], json::parse(R"(["MODEL"])"));
  EXPECT_EQ(advanced["input"]["required"]["add_noise"], json::parse(R"([["enable", "disable"]])"));
  EXPECT_EQ(advanced["input"]["required"]["end_at_step"],
            json::parse(R"(["INT", {"default": 10000, "min": 0, "max": 10000}])"));
  EXPECT_FALSE(advanced.contains("output_tooltips"));
  EXPECT_EQ(info["VAEEncode"]["input"]["required"]["pixels"], json::parse(R"(["IMAGE"])"));
  EXPECT_EQ(info["ImageScale"]["input"]["required"]["upscale_method"],
            json::parse(R"([["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]])"));
  EXPECT_EQ(info["ImageScale"]["category"], "image/upscaling");
}

TEST_F(GraphSchemas, OutputNodesHaveHiddenInputsAndNoOutputs) {
  const json& save = info["SaveImage"];
  EXPECT_EQ(save["output_node"], true);
  EXPECT_EQ(save["output"], json::array());
  EXPECT_EQ(save["output_is_list"], json::array());
  EXPECT_EQ(save["output_name"], json::array());
  EXPECT_EQ(save["input"]["hidden"],
            json::parse(R"({"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"})"));
  EXPECT_EQ(save["input_order"],
            json::parse(R"({"required": ["images", "filename_prefix"],
                            "hidden": ["prompt", "extra_pnginfo"]})"));
  EXPECT_EQ(save["input"]["required"]["filename_prefix"][1]["default"], "ComfyUI");
  EXPECT_EQ(info["PreviewImage"]["output_node"], true);
  EXPECT_EQ(info["PreviewImage"]["input"]["required"]["images"], json::parse(R"(["IMAGE"])"));
}

TEST_F(GraphSchemas, LoadImageListsInputImages) {
  EXPECT_EQ(info["LoadImage"]["input"]["required"]["image"],
            json::parse(R"([["cat.png", "dog.jpg"], {"image_upload": true}])"));
  EXPECT_EQ(info["LoadImage"]["output"], json::parse(R"(["IMAGE", "MASK"])"));
}

TEST_F(GraphSchemas, EmptyContextGivesEmptyCombos) {
  const json empty = object_info(builtin_node_schemas(), SchemaContext{});
  EXPECT_EQ(empty["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0], json::array());
  EXPECT_EQ(empty["KSampler"]["input"]["required"]["sampler_name"][0], json::array());
}

TEST(GraphSchemaRegistry, RejectsDuplicatesAndFindsByName) {
  NodeSchemaRegistry registry = builtin_node_schemas();
  ASSERT_NE(registry.find("VAEDecode"), nullptr);
  EXPECT_EQ(registry.find("VAEDecode")->find_input("vae")->type, "VAE");
  EXPECT_EQ(registry.find("NoSuchNode"), nullptr);
  NodeSchema copy = *registry.find("VAEDecode");
  graph_test::expect_error([&] { registry.add(copy); }, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace df::graph
