// The /object_info entries of the custom-sampling nodes against ComfyUI's nodes_custom_sampler.py,
// and validation of their sampler and scheduler combos.
#include <gtest/gtest.h>

#include "graph/validate.h"
#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;

class CustomSamplingSchemas : public ::testing::Test {
 protected:
  SchemaContext context{{}, {}, {"euler", "dpmpp_2m"}, {"normal", "karras"}};
  json info = object_info(nodes::builtin_node_schemas(), context);

  // Expects the node's required inputs to be exactly `inputs` ([[name, spec], ...] in order).
  void expect_inputs(const char* node, const char* inputs) {
    ASSERT_TRUE(info.contains(node)) << node;
    json by_name = json::object(), order = json::array();
    for (const auto& entry : json::parse(inputs)) {
      by_name[entry[0].get<std::string>()] = entry[1];
      order.push_back(entry[0]);
    }
    EXPECT_EQ(info[node]["input"], json({{"required", by_name}})) << node;
    EXPECT_EQ(info[node]["input_order"], json({{"required", order}})) << node;
  }

  // Expects the node's header fields.
  void expect_node(const char* node, const char* display_name, const char* category,
                   const char* outputs, const char* output_names) {
    ASSERT_TRUE(info.contains(node)) << node;
    const json& n = info[node];
    EXPECT_EQ(n["display_name"], display_name) << node;
    EXPECT_EQ(n["category"], category) << node;
    EXPECT_EQ(n["python_module"], "comfy_extras.nodes_custom_sampler") << node;
    EXPECT_EQ(n["description"], "") << node;
    EXPECT_EQ(n["output_node"], false) << node;
    EXPECT_EQ(n["output"], json::parse(outputs)) << node;
    EXPECT_EQ(n["output_name"], json::parse(output_names)) << node;
    EXPECT_EQ(n["output_is_list"], json(std::vector<bool>(n["output"].size(), false))) << node;
    EXPECT_FALSE(n.contains("output_tooltips")) << node;
  }
};

TEST_F(CustomSamplingSchemas, SamplerCustom) {
  expect_node("SamplerCustom", "SamplerCustom", "sampling/custom_sampling",
              R"(["LATENT", "LATENT"])", R"(["output", "denoised_output"])");
  expect_inputs("SamplerCustom", R"([
      ["model", ["MODEL"]],
      ["add_noise", ["BOOLEAN", {"default": true, "advanced": true}]],
      ["noise_seed", ["INT", {"default": 0, "min": 0, "max": 18446744073709551615,
                              "control_after_generate": true}]],
      ["cfg", ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}]],
      ["positive", ["CONDITIONING"]], ["negative", ["CONDITIONING"]],
      ["sampler", ["SAMPLER"]], ["sigmas", ["SIGMAS"]], ["latent_image", ["LATENT"]]])");
}

TEST_F(CustomSamplingSchemas, SamplerCustomAdvanced) {
  expect_node("SamplerCustomAdvanced", "SamplerCustomAdvanced", "sampling/custom_sampling",
              R"(["LATENT", "LATENT"])", R"(["output", "denoised_output"])");
  expect_inputs("SamplerCustomAdvanced", R"([
      ["noise", ["NOISE"]], ["guider", ["GUIDER"]], ["sampler", ["SAMPLER"]],
      ["sigmas", ["SIGMAS"]], ["latent_image", ["LATENT"]]])");
}

TEST_F(CustomSamplingSchemas, SamplerSelectionTakesTheContextList) {
  expect_node("KSamplerSelect", "KSamplerSelect", "sampling/samplers", R"(["SAMPLER"])",
              R"(["SAMPLER"])");
  expect_inputs("KSamplerSelect", R"([["sampler_name", [["euler", "dpmpp_2m"]]]])");
}

TEST_F(CustomSamplingSchemas, Schedulers) {
  for (const char* node : {"BasicScheduler", "KarrasScheduler", "ExponentialScheduler",
                           "PolyexponentialScheduler", "SDTurboScheduler"}) {
    expect_node(node, node, "sampling/schedulers", R"(["SIGMAS"])", R"(["SIGMAS"])");
  }
  expect_inputs("BasicScheduler", R"([
      ["model", ["MODEL"]], ["scheduler", [["normal", "karras"]]],
      ["steps", ["INT", {"default": 20, "min": 1, "max": 10000}]],
      ["denoise", ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}]]])");
  const char* sigma_range = R"(
      ["steps", ["INT", {"default": 20, "min": 1, "max": 10000}]],
      ["sigma_max", ["FLOAT", {"default": 14.614642, "min": 0.0, "max": 5000.0, "step": 0.01,
                               "round": false, "advanced": true}]],
      ["sigma_min", ["FLOAT", {"default": 0.0291675, "min": 0.0, "max": 5000.0, "step": 0.01,
                               "round": false, "advanced": true}]])";
  expect_inputs("KarrasScheduler", (std::string("[") + sigma_range + R"(,
      ["rho", ["FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.01,
                         "round": false, "advanced": true}]]])").c_str());
  expect_inputs("ExponentialScheduler", (std::string("[") + sigma_range + "]").c_str());
  expect_inputs("PolyexponentialScheduler", (std::string("[") + sigma_range + R"(,
      ["rho", ["FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.01,
                         "round": false, "advanced": true}]]])").c_str());
  expect_inputs("SDTurboScheduler", R"([
      ["model", ["MODEL"]], ["steps", ["INT", {"default": 1, "min": 1, "max": 10}]],
      ["denoise", ["FLOAT", {"default": 1.0, "min": 0, "max": 1.0, "step": 0.01}]]])");
}

TEST_F(CustomSamplingSchemas, SigmaTools) {
  expect_node("SplitSigmas", "SplitSigmas", "sampling/sigmas", R"(["SIGMAS", "SIGMAS"])",
              R"(["high_sigmas", "low_sigmas"])");
  expect_inputs("SplitSigmas", R"([
      ["sigmas", ["SIGMAS"]], ["step", ["INT", {"default": 0, "min": 0, "max": 10000}]]])");
  expect_node("SplitSigmasDenoise", "SplitSigmasDenoise", "sampling/sigmas",
              R"(["SIGMAS", "SIGMAS"])", R"(["high_sigmas", "low_sigmas"])");
  expect_inputs("SplitSigmasDenoise", R"([
      ["sigmas", ["SIGMAS"]],
      ["denoise", ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}]]])");
  expect_node("FlipSigmas", "FlipSigmas", "sampling/sigmas", R"(["SIGMAS"])", R"(["SIGMAS"])");
  expect_inputs("FlipSigmas", R"([["sigmas", ["SIGMAS"]]])");
}

TEST_F(CustomSamplingSchemas, Guiders) {
  expect_node("CFGGuider", "CFG Guider", "sampling/guiders", R"(["GUIDER"])", R"(["GUIDER"])");
  expect_inputs("CFGGuider", R"([
      ["model", ["MODEL"]], ["positive", ["CONDITIONING"]], ["negative", ["CONDITIONING"]],
      ["cfg", ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}]]])");
  expect_node("BasicGuider", "Basic Guider", "sampling/guiders", R"(["GUIDER"])",
              R"(["GUIDER"])");
  expect_inputs("BasicGuider", R"([["model", ["MODEL"]], ["conditioning", ["CONDITIONING"]]])");
  expect_node("DualCFGGuider", "Dual CFG Guider", "sampling/guiders", R"(["GUIDER"])",
              R"(["GUIDER"])");
  expect_inputs("DualCFGGuider", R"([
      ["model", ["MODEL"]], ["cond1", ["CONDITIONING"]], ["cond2", ["CONDITIONING"]],
      ["negative", ["CONDITIONING"]],
      ["cfg_conds", ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1,
                               "round": 0.01}]],
      ["cfg_cond2_negative", ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1,
                                        "round": 0.01}]],
      ["style", [["regular", "nested"]]]])");
}

TEST_F(CustomSamplingSchemas, Noises) {
  expect_node("RandomNoise", "RandomNoise", "sampling/noise", R"(["NOISE"])", R"(["NOISE"])");
  expect_inputs("RandomNoise", R"([
      ["noise_seed", ["INT", {"default": 0, "min": 0, "max": 18446744073709551615,
                              "control_after_generate": true}]]])");
  expect_node("DisableNoise", "DisableNoise", "sampling/noise", R"(["NOISE"])", R"(["NOISE"])");
  expect_inputs("DisableNoise", "[]");
}

TEST_F(CustomSamplingSchemas, RegisteredInComfyOrderAfterTheKSamplers) {
  const NodeSchemaRegistry registry = nodes::builtin_node_schemas();
  std::vector<std::string> names;
  for (const auto& schema : registry.schemas()) names.push_back(schema.name);
  const std::vector<std::string> expected = {
      "KSampler",          "KSamplerAdvanced",   "SamplerCustom",
      "BasicScheduler",    "KarrasScheduler",    "ExponentialScheduler",
      "PolyexponentialScheduler", "SDTurboScheduler", "KSamplerSelect",
      "SplitSigmas",       "SplitSigmasDenoise", "FlipSigmas",
      "CFGGuider",         "DualCFGGuider",      "BasicGuider",
      "RandomNoise",       "DisableNoise",       "SamplerCustomAdvanced"};
  ASSERT_GE(names.size(), expected.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + expected.size()), expected);
}

// The legacy SD 1.5 graph sampled by SamplerCustom 3 with KSamplerSelect 10 and BasicScheduler 11.
json sampler_custom_graph() {
  json prompt = graph_test::legacy_sd15();
  prompt["10"] = {{"class_type", "KSamplerSelect"}, {"inputs", {{"sampler_name", "euler"}}}};
  prompt["11"] = {{"class_type", "BasicScheduler"},
                  {"inputs",
                   {{"model", {"4", 0}}, {"scheduler", "normal"}, {"steps", 4}, {"denoise", 1.0}}}};
  prompt["3"] = {{"class_type", "SamplerCustom"},
                 {"inputs",
                  {{"model", {"4", 0}}, {"add_noise", true}, {"noise_seed", 7}, {"cfg", 5.0},
                   {"positive", {"6", 0}}, {"negative", {"7", 0}}, {"sampler", {"10", 0}},
                   {"sigmas", {"11", 0}}, {"latent_image", {"5", 0}}}}};
  return prompt;
}

ValidationResult validate_custom(const json& prompt) {
  const SchemaContext context{{"v1-5-pruned-emaonly-fp16.safetensors"},
                              {},
                              nodes::supported_samplers(),
                              nodes::supported_schedulers()};
  return validate_workflow(parse_workflow(prompt), nodes::builtin_node_schemas(), context);
}

// The one error of node `id`.
json error_of(const ValidationResult& result, const char* id) {
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.node_errors.size(), 1u) << result.node_errors.dump();
  return result.node_errors[id]["errors"][0];
}

TEST(CustomSamplingValidation, SamplerCustomGraphIsValid) {
  const ValidationResult result = validate_custom(sampler_custom_graph());
  EXPECT_TRUE(result.ok) << result.node_errors.dump();
}

TEST(CustomSamplingValidation, UnknownSamplerIsNotInList) {
  json prompt = sampler_custom_graph();
  prompt["10"]["inputs"]["sampler_name"] = "euler_fancy";
  const json error = error_of(validate_custom(prompt), "10");
  EXPECT_EQ(error["type"], "value_not_in_list");
  EXPECT_EQ(error["message"], "Value not in list");
  // ComfyUI names long lists by their length and leaves their input_config out.
  EXPECT_EQ(error["details"], "sampler_name: 'euler_fancy' not in (list of length " +
                                  std::to_string(nodes::supported_samplers().size()) + ")");
  EXPECT_EQ(error["extra_info"]["received_value"], "euler_fancy");
}

TEST(CustomSamplingValidation, UnknownSchedulerIsNotInList) {
  json prompt = sampler_custom_graph();
  prompt["11"]["inputs"]["scheduler"] = "fancy";
  const json error = error_of(validate_custom(prompt), "11");
  EXPECT_EQ(error["type"], "value_not_in_list");
  EXPECT_EQ(error["details"].get<std::string>().rfind("scheduler: 'fancy' not in ['simple'", 0), 0u)
      << error["details"];
  EXPECT_EQ(error["extra_info"]["input_config"][0], json(nodes::supported_schedulers()));
}

TEST(CustomSamplingValidation, SigmasMustComeFromASigmasOutput) {
  json prompt = sampler_custom_graph();
  prompt["3"]["inputs"]["sigmas"] = {"10", 0};  // a SAMPLER
  const json error = error_of(validate_custom(prompt), "3");
  EXPECT_EQ(error["type"], "return_type_mismatch");
}

}  // namespace
}  // namespace df::graph
