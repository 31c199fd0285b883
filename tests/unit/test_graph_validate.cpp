// Unit tests for workflow validation: ComfyUI's prompt-level and per-input error shapes.
#include <gtest/gtest.h>

#include <stdexcept>

#include "nodes/packs/node_packs.h"
#include "graph/validate.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;
using nodes::builtin_node_schemas;
using nodes::supported_samplers;
using nodes::supported_schedulers;

class GraphValidate : public ::testing::Test {
 protected:
  ValidationResult validate(const json& prompt, const std::vector<std::string>& partial = {},
                            const ValidationHooks& hooks = {}) {
    return validate_workflow(parse_workflow(prompt), schemas, context, partial, hooks);
  }

  // Validates `prompt`, expects exactly one failing node `id` with one error, and returns it.
  json single_error(const json& prompt, const std::string& id) {
    ValidationResult result = validate(prompt);
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.error["type"], "prompt_outputs_failed_validation");
    EXPECT_EQ(result.node_errors.size(), 1u) << result.node_errors.dump();
    const json& entry = result.node_errors[id];
    EXPECT_EQ(entry["errors"].size(), 1u) << entry.dump();
    EXPECT_EQ(entry["dependent_outputs"], json::array({"9"}));
    EXPECT_EQ(entry["class_type"], prompt[id]["class_type"]);
    EXPECT_EQ(result.error["details"], entry["errors"][0]["message"].get<std::string>() + ": " +
                                           entry["errors"][0]["details"].get<std::string>());
    return entry["errors"][0];
  }

  // The legacy graph plus an img2img branch: LoadImage 10 -> VAEEncode 11 -> KSampler 3.
  static json img2img() {
    json prompt = graph_test::legacy_sd15();
    prompt["10"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", "cat.png"}}}};
    prompt["11"] = {{"class_type", "VAEEncode"},
                    {"inputs", {{"pixels", {"10", 0}}, {"vae", {"4", 2}}}}};
    prompt["3"]["inputs"]["latent_image"] = {"11", 0};
    return prompt;
  }

  SchemaContext context{{"v1-5-pruned-emaonly-fp16.safetensors"},
                        {"cat.png"},
                        supported_samplers(),
                        supported_schedulers()};
  NodeSchemaRegistry schemas = builtin_node_schemas();
  json prompt = graph_test::legacy_sd15();
};

TEST_F(GraphValidate, LegacyDefaultGraphIsValid) {
  ValidationResult result = validate(prompt);
  EXPECT_TRUE(result.ok);
  EXPECT_TRUE(result.error.is_null());
  EXPECT_EQ(result.node_errors, json::object());
  EXPECT_EQ(result.outputs_to_execute, std::vector<std::string>{"9"});
}

TEST_F(GraphValidate, NodeWithoutClassTypeFailsThePrompt) {
  prompt["3"].erase("class_type");
  ValidationResult result = validate(prompt);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error, json::parse(R"({
    "type": "missing_node_type",
    "message": "Node 'KSampler' has no class_type. The workflow may be corrupted or a custom node is missing.",
    "details": "Node ID '#3'",
    "extra_info": {"node_id": "3", "class_type": null, "node_title": "KSampler"}})"));
  EXPECT_EQ(result.node_errors, json::object());

  prompt["3"].erase("_meta");
  result = validate(prompt);
  EXPECT_EQ(result.error["message"],
            "Node 'ID #3' has no class_type. The workflow may be corrupted or a custom node is "
            "missing.");
  EXPECT_TRUE(result.error["extra_info"]["node_title"].is_null());
}

TEST_F(GraphValidate, UnknownClassTypeFailsThePrompt) {
  prompt["5"]["class_type"] = "EmptyHunyuanLatentVideo";
  ValidationResult result = validate(prompt);
  EXPECT_EQ(result.error, json::parse(R"({
    "type": "missing_node_type",
    "message": "Node 'Empty Latent Image' not found. The custom node may not be installed.",
    "details": "Node ID '#5'",
    "extra_info": {"node_id": "5", "class_type": "EmptyHunyuanLatentVideo",
                   "node_title": "Empty Latent Image"}})"));
  prompt["5"].erase("_meta");
  EXPECT_EQ(validate(prompt).error["extra_info"]["node_title"], "EmptyHunyuanLatentVideo");
}

TEST_F(GraphValidate, PromptWithoutOutputNodes) {
  prompt.erase("9");
  ValidationResult result = validate(prompt);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error, json::parse(R"({"type": "prompt_no_outputs",
    "message": "Prompt has no outputs", "details": "", "extra_info": {}})"));
}

TEST_F(GraphValidate, RequiredInputMissing) {
  prompt["3"]["inputs"].erase("seed");
  EXPECT_EQ(single_error(prompt, "3"), json::parse(R"({"type": "required_input_missing",
    "message": "Required input is missing", "details": "seed",
    "extra_info": {"input_name": "seed"}})"));
}

TEST_F(GraphValidate, BadLinkedInput) {
  prompt["3"]["inputs"]["model"] = {"4", 0, 1};
  EXPECT_EQ(single_error(prompt, "3"), json::parse(R"({"type": "bad_linked_input",
    "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
    "details": "model",
    "extra_info": {"input_name": "model",
                   "input_config": ["MODEL", {"tooltip": "The model used for denoising the input latent."}],
                   "received_value": ["4", 0, 1]}})"));
}

TEST_F(GraphValidate, LinkToMissingNodeOrSlot) {
  prompt["8"]["inputs"]["vae"] = {"40", 2};
  json error = single_error(prompt, "8");
  EXPECT_EQ(error["type"], "bad_linked_input");
  EXPECT_EQ(error["message"], "Linked node does not exist");
  EXPECT_EQ(error["details"], "vae: node '40' is not in the prompt");
  EXPECT_EQ(error["extra_info"]["input_name"], "vae");

  prompt = graph_test::legacy_sd15();
  prompt["8"]["inputs"]["vae"] = {"4", 3};
  error = single_error(prompt, "8");
  EXPECT_EQ(error["message"], "Linked output slot does not exist");
  EXPECT_EQ(error["details"], "vae: node '4' (CheckpointLoaderSimple) has no output slot 3");
}

TEST_F(GraphValidate, ReturnTypeMismatch) {
  prompt["3"]["inputs"]["model"] = {"4", 1};
  EXPECT_EQ(single_error(prompt, "3"), json::parse(R"js({"type": "return_type_mismatch",
    "message": "Return type mismatch between linked nodes",
    "details": "model, received_type(CLIP) mismatch input_type(MODEL)",
    "extra_info": {"input_name": "model",
                   "input_config": ["MODEL", {"tooltip": "The model used for denoising the input latent."}],
                   "received_type": "CLIP", "linked_node": ["4", 1]}})js"));
}

TEST_F(GraphValidate, InvalidInputType) {
  prompt["3"]["inputs"]["steps"] = "twenty";
  json error = single_error(prompt, "3");
  EXPECT_EQ(error["type"], "invalid_input_type");
  EXPECT_EQ(error["message"], "Failed to convert an input value to a INT value");
  EXPECT_EQ(error["details"], "steps, twenty, invalid literal for int() with base 10: 'twenty'");
  EXPECT_EQ(error["extra_info"]["received_value"], "twenty");
  EXPECT_EQ(error["extra_info"]["exception_message"],
            "invalid literal for int() with base 10: 'twenty'");
  EXPECT_EQ(error["extra_info"]["input_config"][0], "INT");

  prompt = graph_test::legacy_sd15();
  prompt["3"]["inputs"]["cfg"] = nullptr;
  error = single_error(prompt, "3");
  EXPECT_EQ(error["message"], "Failed to convert an input value to a FLOAT value");
  EXPECT_EQ(error["details"],
            "cfg, None, float() argument must be a string or a real number, not 'NoneType'");
}

TEST_F(GraphValidate, ConstantForLinkOnlyInput) {
  prompt["8"]["inputs"]["vae"] = "my.vae";
  const json error = single_error(prompt, "8");
  EXPECT_EQ(error["type"], "invalid_input_type");
  EXPECT_EQ(error["details"],
            "vae, my.vae, a VAE input must be linked to the output of another node");
}

TEST_F(GraphValidate, CoercesLikePython) {
  prompt["3"]["inputs"]["steps"] = "20";
  prompt["3"]["inputs"]["seed"] = "  42 ";
  prompt["3"]["inputs"]["cfg"] = "7.5";
  prompt["3"]["inputs"]["denoise"] = true;
  prompt["5"]["inputs"]["width"] = 512.9;
  prompt["6"]["inputs"]["text"] = 12345;
  prompt["3"]["inputs"]["sampler_name"] = {{"__value__", "heun"}};
  prompt["3"]["inputs"]["unknown_extra"] = {1, 2, 3};
  EXPECT_TRUE(validate(prompt).ok) << validate(prompt).node_errors.dump();
}

TEST_F(GraphValidate, ValueSmallerThanMin) {
  prompt["3"]["inputs"]["steps"] = 0;
  EXPECT_EQ(single_error(prompt, "3"), json::parse(R"({"type": "value_smaller_than_min",
    "message": "Value 0 smaller than min of 1", "details": "steps",
    "extra_info": {"input_name": "steps",
                   "input_config": ["INT", {"default": 20, "min": 1, "max": 10000,
                                            "tooltip": "The number of steps used in the denoising process."}],
                   "received_value": 0}})"));
  prompt = graph_test::legacy_sd15();
  prompt["3"]["inputs"]["cfg"] = "-1";
  const json error = single_error(prompt, "3");
  EXPECT_EQ(error["message"], "Value -1.0 smaller than min of 0.0");
  EXPECT_EQ(error["extra_info"]["received_value"].dump(), "-1.0");
}

TEST_F(GraphValidate, ValueBiggerThanMax) {
  prompt["5"]["inputs"]["width"] = 16392;
  const json error = single_error(prompt, "5");
  EXPECT_EQ(error["type"], "value_bigger_than_max");
  EXPECT_EQ(error["message"], "Value 16392 bigger than max of 16384");
  EXPECT_EQ(error["details"], "width");
  prompt = graph_test::legacy_sd15();
  prompt["3"]["inputs"]["denoise"] = 1.5;
  EXPECT_EQ(single_error(prompt, "3")["message"], "Value 1.5 bigger than max of 1.0");
}

TEST_F(GraphValidate, SeedsUpToTwoToTheSixtyFourMinusOne) {
  prompt["3"]["inputs"]["seed"] = json::parse("18446744073709551615");
  EXPECT_TRUE(validate(prompt).ok);
  prompt["3"]["inputs"]["seed"] = "18446744073709551615";
  EXPECT_TRUE(validate(prompt).ok);

  prompt["3"]["inputs"]["seed"] = json::parse("18446744073709551616");
  json error = single_error(prompt, "3");
  EXPECT_EQ(error["type"], "value_bigger_than_max");
  EXPECT_EQ(error["message"],
            "Value 18446744073709551616 bigger than max of 18446744073709551615");
  prompt["3"]["inputs"]["seed"] = -1;
  EXPECT_EQ(single_error(prompt, "3")["message"], "Value -1 smaller than min of 0");
}

TEST_F(GraphValidate, ValueNotInList) {
  prompt["3"]["inputs"]["scheduler"] = "fancy";
  json error = single_error(prompt, "3");
  EXPECT_EQ(error["type"], "value_not_in_list");
  EXPECT_EQ(error["message"], "Value not in list");
  EXPECT_EQ(error["details"],
            "scheduler: 'fancy' not in ['simple', 'sgm_uniform', 'karras', 'exponential', "
            "'ddim_uniform', 'beta', 'normal', 'linear_quadratic', 'kl_optimal']");
  EXPECT_EQ(error["extra_info"]["input_config"][0], json(supported_schedulers()));
  EXPECT_EQ(error["extra_info"]["received_value"], "fancy");

  // Lists longer than 20 are named by their length, without an input_config (as ComfyUI).
  prompt = graph_test::legacy_sd15();
  prompt["3"]["inputs"]["sampler_name"] = "euler_fancy";
  error = single_error(prompt, "3");
  EXPECT_EQ(error["type"], "value_not_in_list");
  EXPECT_EQ(error["details"], "sampler_name: 'euler_fancy' not in (list of length " +
                                  std::to_string(supported_samplers().size()) + ")");
  EXPECT_TRUE(error["extra_info"]["input_config"].is_null());
  EXPECT_EQ(error["extra_info"]["received_value"], "euler_fancy");
}

TEST_F(GraphValidate, ValueNotInLongListHidesTheList) {
  context.checkpoints.clear();
  for (int i = 0; i < 25; ++i) context.checkpoints.push_back("m" + std::to_string(i));
  const json error = single_error(prompt, "4");
  EXPECT_EQ(error["details"],
            "ckpt_name: 'v1-5-pruned-emaonly-fp16.safetensors' not in (list of length 25)");
  EXPECT_TRUE(error["extra_info"]["input_config"].is_null());
  EXPECT_EQ(error["extra_info"]["received_value"], "v1-5-pruned-emaonly-fp16.safetensors");
}

TEST_F(GraphValidate, CustomValidationReplacesTheListCheck) {
  ValidationHooks hooks;
  hooks.by_class_type["LoadImage"] =
      load_image_validator([](std::string_view name) { return name != "missing.png"; });
  json prompt = img2img();
  EXPECT_TRUE(validate(prompt, {}, hooks).ok);

  prompt["10"]["inputs"]["image"] = "uploads/dog.png";
  EXPECT_TRUE(validate(prompt, {}, hooks).ok);  // on disk though not in the combo list
  EXPECT_FALSE(validate(prompt).ok);            // without the hook: value_not_in_list

  prompt["10"]["inputs"]["image"] = "missing.png";
  ValidationResult result = validate(prompt, {}, hooks);
  EXPECT_EQ(result.node_errors["10"]["errors"], json::parse(R"([{
    "type": "custom_validation_failed", "message": "Custom validation failed for node",
    "details": "image - Invalid image file: missing.png",
    "extra_info": {"input_name": "image"}}])"));
  EXPECT_EQ(result.node_errors.size(), 1u);
}

TEST_F(GraphValidate, ThrowingCustomCheckIsReported) {
  ValidationHooks hooks;
  hooks.by_class_type["LoadImage"] = {
      {"image"}, [](const Node&) -> std::optional<std::string> {
        throw std::runtime_error("disk on fire");
      }};
  ValidationResult result = validate(img2img(), {}, hooks);
  const json& error = result.node_errors["10"]["errors"][0];
  EXPECT_EQ(error["type"], "exception_during_validation");
  EXPECT_EQ(error["message"], "Exception when validating node");
  EXPECT_EQ(error["details"], "disk on fire");
}

TEST_F(GraphValidate, NodesNoOutputDependsOnAreIgnored) {
  prompt["20"] = {{"class_type", "KSampler"}, {"inputs", {{"seed", "garbage"}}}};
  prompt["21"] = {{"class_type", "EmptyLatentImage"}, {"inputs", {{"width", -5}}}};
  ValidationResult result = validate(prompt);
  EXPECT_TRUE(result.ok);
  EXPECT_EQ(result.node_errors, json::object());
}

TEST_F(GraphValidate, ErrorsListEveryOutputThatDependsOnTheNode) {
  prompt["10"] = {{"class_type", "PreviewImage"}, {"inputs", {{"images", {"8", 0}}}}};
  prompt["4"]["inputs"]["ckpt_name"] = "gone.safetensors";
  prompt["5"]["inputs"]["batch_size"] = 0;
  ValidationResult result = validate(prompt);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.node_errors["4"]["dependent_outputs"], json::parse(R"(["10", "9"])"));
  EXPECT_EQ(result.node_errors["5"]["dependent_outputs"], json::parse(R"(["10", "9"])"));
  EXPECT_EQ(result.node_errors.size(), 2u);  // 3, 6, 7, 8 fail only because of 4 and 5
  EXPECT_EQ(result.error["details"],
            "Value not in list: ckpt_name: 'gone.safetensors' not in "
            "['v1-5-pruned-emaonly-fp16.safetensors']\n"
            "Value 0 smaller than min of 1: batch_size");
}

TEST_F(GraphValidate, ValidOutputsRunWhenOthersFail) {
  prompt["10"] = {{"class_type", "PreviewImage"}, {"inputs", {{"images", {"4", 0}}}}};
  ValidationResult result = validate(prompt);
  EXPECT_TRUE(result.ok);
  EXPECT_TRUE(result.error.is_null());
  EXPECT_EQ(result.outputs_to_execute, std::vector<std::string>{"9"});
  EXPECT_EQ(result.node_errors["10"]["errors"][0]["type"], "return_type_mismatch");
  EXPECT_EQ(result.node_errors["10"]["dependent_outputs"], json::array({"10"}));
}

TEST_F(GraphValidate, PartialExecutionTargets) {
  prompt["10"] = {{"class_type", "PreviewImage"}, {"inputs", {{"images", {"4", 0}}}}};
  EXPECT_TRUE(validate(prompt, {"9"}).ok);
  EXPECT_EQ(validate(prompt, {"9"}).node_errors, json::object());
  EXPECT_EQ(validate(prompt, {"10"}).error["type"], "prompt_outputs_failed_validation");
  EXPECT_EQ(validate(prompt, {"3"}).error["type"], "prompt_no_outputs");
}

TEST_F(GraphValidate, SelfLinkIsADependencyCycle) {
  prompt["3"]["inputs"]["latent_image"] = {"3", 0};
  EXPECT_EQ(single_error(prompt, "3"), json::parse(R"({"type": "dependency_cycle",
    "message": "Dependency cycle detected",
    "details": "latent_image: node '3' depends on its own output",
    "extra_info": {"input_name": "latent_image", "linked_node": ["3", 0],
                   "cycle_nodes": ["3"]}})"));
}

TEST_F(GraphValidate, CycleIsReportedOnceOnItsFirstNode) {
  // KSampler 3 -> VAEDecode 8 -> VAEEncode 11 -> KSampler 3.
  prompt["11"] = {{"class_type", "VAEEncode"},
                  {"inputs", {{"pixels", {"8", 0}}, {"vae", {"4", 2}}}}};
  prompt["3"]["inputs"]["latent_image"] = {"11", 0};
  ValidationResult result = validate(prompt);
  EXPECT_FALSE(result.ok);
  ASSERT_EQ(result.node_errors.size(), 1u) << result.node_errors.dump();
  const json& error = result.node_errors["11"]["errors"][0];
  EXPECT_EQ(error["type"], "dependency_cycle");
  EXPECT_EQ(error["extra_info"]["input_name"], "pixels");
  EXPECT_EQ(error["extra_info"]["cycle_nodes"], json::parse(R"(["11", "3", "8"])"));
  EXPECT_EQ(error["details"], "pixels: 3 nodes depend on each other: '11', '3', '8'");
  EXPECT_EQ(result.node_errors["11"]["dependent_outputs"], json::array({"9"}));
}

// A chain of `length` ImageScale nodes ending in SaveImage "save"; `closing` links the last
// back to the first (a cycle), else the last loads a missing image.
json image_scale_chain(int length, bool closing) {
  json chain = json::object();
  for (int i = 0; i < length; ++i) {
    const std::string source = i + 1 < length ? std::to_string(i + 1) : (closing ? "0" : "load");
    chain[std::to_string(i)] = {{"class_type", "ImageScale"},
                                {"inputs", {{"image", {source, 0}},
                                            {"upscale_method", "nearest-exact"},
                                            {"width", 8}, {"height", 8}, {"crop", "disabled"}}}};
  }
  chain["load"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", "missing.png"}}}};
  chain["save"] = {{"class_type", "SaveImage"},
                   {"inputs", {{"images", {"0", 0}}, {"filename_prefix", "c"}}}};
  return chain;
}

TEST_F(GraphValidate, LongChainsAndCyclesAreWalkedWithoutRecursion) {
  // Deep enough that one stack frame per node would overflow a thread's stack.
  const int length = static_cast<int>(kMaxWorkflowNodes) - 2;
  ValidationResult chain = validate(image_scale_chain(length, /*closing=*/false));
  EXPECT_FALSE(chain.ok);
  EXPECT_EQ(chain.node_errors.size(), 1u);  // the missing image, at the far end
  ValidationResult cycle = validate(image_scale_chain(length, /*closing=*/true));
  ASSERT_EQ(cycle.node_errors.size(), 1u);
  const json& error = cycle.node_errors.begin().value()["errors"][0];
  EXPECT_EQ(error["type"], "dependency_cycle");
  EXPECT_EQ(error["extra_info"]["cycle_nodes"].size(), static_cast<size_t>(length));
  EXPECT_LT(error["details"].get<std::string>().size(), 1000u);
}

TEST_F(GraphValidate, UndeclaredInputsAreIgnoredUnlessTheirLinksCannotResolve) {
  prompt["8"]["inputs"]["extra"] = "anything";
  prompt["8"]["inputs"]["extra_link"] = {"4", 2};
  EXPECT_TRUE(validate(prompt).ok);
  prompt["8"]["inputs"]["extra_link"] = {"9", 0};  // SaveImage has no outputs
  EXPECT_EQ(single_error(prompt, "8")["type"], "bad_linked_input");
  prompt["8"]["inputs"]["extra_link"] = {"nowhere", 0};
  EXPECT_EQ(single_error(prompt, "8")["message"], "Linked node does not exist");
}

TEST_F(GraphValidate, TextWithANulCharacterIsRefused) {
  prompt["6"]["inputs"]["text"] = std::string("a red\0boat", 10);
  EXPECT_EQ(single_error(prompt, "6")["type"], "invalid_input_type");
}

TEST_F(GraphValidate, FilenamePrefixesMustMakeFileNames) {
  ValidationHooks hooks;
  hooks.by_class_type.emplace("SaveImage", filename_prefix_validator());
  auto error_of = [&](const std::string& prefix) {
    prompt["9"]["inputs"]["filename_prefix"] = prefix;
    return validate(prompt, {}, hooks);
  };
  EXPECT_TRUE(error_of("ok/🎨 art").ok);
  EXPECT_TRUE(error_of(std::string(243, 'p')).ok);
  for (const std::string& bad : {std::string(244, 'p'), "d/" + std::string(256, 'd') + "/x"}) {
    const ValidationResult result = error_of(bad);
    ASSERT_FALSE(result.ok) << bad.size();
    EXPECT_EQ(result.node_errors["9"]["errors"][0]["type"], "custom_validation_failed");
  }
}

}  // namespace
}  // namespace df::graph
