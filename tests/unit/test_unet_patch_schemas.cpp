// The /object_info entries of the UNet patch nodes (FreeU, FreeU_V2, PerturbedAttentionGuidance,
// PatchModelAddDownscale) and ModelSamplingContinuousEDM against ComfyUI's, and validation of
// their bounds and choices.
#include <gtest/gtest.h>

#include "graph/validate.h"
#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;

class UNetPatchSchemas : public ::testing::Test {
 protected:
  json info = object_info(nodes::builtin_node_schemas(), SchemaContext{});

  // Expects the node's header and its required inputs to be exactly `inputs` ([[name, spec], ...]).
  void expect_node(const char* node, const char* display_name, const char* category,
                   const char* module, const char* inputs) {
    ASSERT_TRUE(info.contains(node)) << node;
    const json& n = info[node];
    EXPECT_EQ(n["display_name"], display_name) << node;
    EXPECT_EQ(n["category"], category) << node;
    EXPECT_EQ(n["python_module"], module) << node;
    EXPECT_EQ(n["output"], json({"MODEL"})) << node;
    EXPECT_EQ(n["output_name"], json({"MODEL"})) << node;
    EXPECT_EQ(n["output_is_list"], json({false})) << node;
    EXPECT_EQ(n["output_node"], false) << node;
    json by_name = json::object(), order = json::array();
    for (const auto& entry : json::parse(inputs)) {
      by_name[entry[0].get<std::string>()] = entry[1];
      order.push_back(entry[0]);
    }
    EXPECT_EQ(n["input"], json({{"required", by_name}})) << node;
    EXPECT_EQ(n["input_order"], json({{"required", order}})) << node;
  }
};

TEST_F(UNetPatchSchemas, FreeU) {
  expect_node("FreeU", "FreeU", "model_patches/unet", "comfy_extras.nodes_freelunch", R"([
      ["model", ["MODEL"]],
      ["b1", ["FLOAT", {"default": 1.1, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": true}]],
      ["b2", ["FLOAT", {"default": 1.2, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": true}]],
      ["s1", ["FLOAT", {"default": 0.9, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": true}]],
      ["s2", ["FLOAT", {"default": 0.2, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": true}]]])");
}

TEST_F(UNetPatchSchemas, FreeUV2) {
  expect_node("FreeU_V2", "FreeU_V2", "model_patches/unet", "comfy_extras.nodes_freelunch", R"([
      ["model", ["MODEL"]],
      ["b1", ["FLOAT", {"default": 1.3, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": true}]],
      ["b2", ["FLOAT", {"default": 1.4, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": true}]],
      ["s1", ["FLOAT", {"default": 0.9, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": true}]],
      ["s2", ["FLOAT", {"default": 0.2, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": true}]]])");
}

TEST_F(UNetPatchSchemas, PerturbedAttentionGuidance) {
  expect_node("PerturbedAttentionGuidance", "PerturbedAttentionGuidance", "model_patches/unet",
              "comfy_extras.nodes_pag", R"([
      ["model", ["MODEL"]],
      ["scale", ["FLOAT", {"default": 3.0, "min": 0.0, "max": 100.0, "step": 0.01, "round": 0.01}]]])");
}

TEST_F(UNetPatchSchemas, PatchModelAddDownscale) {
  expect_node("PatchModelAddDownscale", "PatchModelAddDownscale (Kohya Deep Shrink)",
              "model_patches/unet", "comfy_extras.nodes_model_downscale", R"([
      ["model", ["MODEL"]],
      ["block_number", ["INT", {"default": 3, "min": 1, "max": 32, "step": 1}]],
      ["downscale_factor", ["FLOAT", {"default": 2.0, "min": 0.1, "max": 9.0, "step": 0.001}]],
      ["start_percent", ["FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}]],
      ["end_percent", ["FLOAT", {"default": 0.35, "min": 0.0, "max": 1.0, "step": 0.001}]],
      ["downscale_after_skip", ["BOOLEAN", {"default": true}]],
      ["downscale_method", [["bicubic", "nearest-exact", "bilinear", "area", "bislerp"]]],
      ["upscale_method", [["bicubic", "nearest-exact", "bilinear", "area", "bislerp"]]]])");
}

TEST_F(UNetPatchSchemas, ModelSamplingContinuousEDM) {
  expect_node("ModelSamplingContinuousEDM", "ModelSamplingContinuousEDM", "advanced/model",
              "comfy_extras.nodes_model_advanced", R"([
      ["model", ["MODEL"]],
      ["sampling", [["v_prediction", "edm", "edm_playground_v2.5", "eps", "cosmos_rflow"]]],
      ["sigma_max", ["FLOAT", {"default": 120.0, "min": 0.0, "max": 1000.0, "step": 0.001, "round": false}]],
      ["sigma_min", ["FLOAT", {"default": 0.002, "min": 0.0, "max": 1000.0, "step": 0.001, "round": false}]]])");
}

// The legacy SD 1.5 graph with node 10 of `type` between the checkpoint's MODEL and KSampler 3.
json patched_graph(const char* type, json inputs) {
  json prompt = graph_test::legacy_sd15();
  inputs["model"] = {"4", 0};
  prompt["10"] = {{"class_type", type}, {"inputs", inputs}};
  prompt["3"]["inputs"]["model"] = {"10", 0};
  return prompt;
}

ValidationResult validate_patched(const json& prompt) {
  const SchemaContext context{{"v1-5-pruned-emaonly-fp16.safetensors"},
                              {},
                              nodes::supported_samplers(),
                              nodes::supported_schedulers()};
  return validate_workflow(parse_workflow(prompt), nodes::builtin_node_schemas(), context);
}

// The type of node 10's one error.
std::string error_type(const ValidationResult& result) {
  EXPECT_FALSE(result.ok);
  return result.node_errors["10"]["errors"][0]["type"].get<std::string>();
}

TEST(UNetPatchValidation, CorpusSettingsAreValid) {
  for (const json& prompt :
       {patched_graph("FreeU_V2", {{"b1", 1.3}, {"b2", 1.4}, {"s1", 0.9}, {"s2", 0.2}}),
        patched_graph("FreeU", {{"b1", 1}, {"b2", 1.08}, {"s1", 0.8}, {"s2", 0.8}}),
        patched_graph("PerturbedAttentionGuidance", {{"scale", 4}}),
        patched_graph("PatchModelAddDownscale",
                      {{"block_number", 3}, {"downscale_factor", 2}, {"start_percent", 0},
                       {"end_percent", 0.35}, {"downscale_after_skip", true},
                       {"downscale_method", "bicubic"}, {"upscale_method", "bicubic"}}),
        patched_graph("ModelSamplingContinuousEDM",
                      {{"sampling", "v_prediction"}, {"sigma_max", 120.0}, {"sigma_min", 0.002}})}) {
    const ValidationResult result = validate_patched(prompt);
    EXPECT_TRUE(result.ok) << result.node_errors.dump();
  }
}

TEST(UNetPatchValidation, BoundsAndChoicesAreHeld) {
  EXPECT_EQ(error_type(validate_patched(
                patched_graph("FreeU", {{"b1", 10.5}, {"b2", 1.2}, {"s1", 0.9}, {"s2", 0.2}}))),
            "value_bigger_than_max");
  EXPECT_EQ(error_type(validate_patched(patched_graph("PerturbedAttentionGuidance", {{"scale", -1}}))),
            "value_smaller_than_min");
  EXPECT_EQ(error_type(validate_patched(patched_graph(
                "PatchModelAddDownscale",
                {{"block_number", 0}, {"downscale_factor", 2}, {"start_percent", 0},
                 {"end_percent", 0.35}, {"downscale_after_skip", true},
                 {"downscale_method", "bicubic"}, {"upscale_method", "bicubic"}}))),
            "value_smaller_than_min");
  EXPECT_EQ(error_type(validate_patched(patched_graph(
                "PatchModelAddDownscale",
                {{"block_number", 3}, {"downscale_factor", 2}, {"start_percent", 0},
                 {"end_percent", 0.35}, {"downscale_after_skip", true},
                 {"downscale_method", "lanczos"}, {"upscale_method", "bicubic"}}))),
            "value_not_in_list");
  EXPECT_EQ(error_type(validate_patched(patched_graph(
                "ModelSamplingContinuousEDM",
                {{"sampling", "x0"}, {"sigma_max", 120.0}, {"sigma_min", 0.002}}))),
            "value_not_in_list");
}

}  // namespace
}  // namespace df::graph
