// Unit tests for generation requests: range checks naming the field, and their workflow graphs.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/generation_request.h"
#include "nodes/packs/node_packs.h"
#include "graph/validate.h"
#include "test_graph_support.h"

namespace df {
namespace {

using nlohmann::json;

GenerationRequest valid_request() {
  GenerationRequest request;
  request.prompt = "a lighthouse at dusk";
  request.negative_prompt = "blurry";
  request.checkpoint = "v1-5-pruned-emaonly-fp16.safetensors";
  return request;
}

// Expects validation to fail with kInvalidArgument naming `field` in message and details.
void expect_rejected(const GenerationRequest& request, const std::string& field) {
  const Error e = graph_test::expect_error([&] { validate_generation_request(request); },
                                           ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.details().value("field", ""), field) << e.what();
  EXPECT_EQ(std::string(e.what()).rfind(field + ": ", 0), 0u) << e.what();
}

// Runs the graph through the server's ComfyUI-compatible validation.
graph::ValidationResult validate_graph(const json& workflow, const GenerationRequest& request) {
  graph::SchemaContext context{{request.checkpoint},
                               {"cat.png"},
                               nodes::supported_samplers(),
                               nodes::supported_schedulers()};
  return graph::validate_workflow(graph::parse_workflow(workflow), nodes::builtin_node_schemas(),
                                  context);
}

json without_meta(json workflow) {
  for (auto& [id, node] : workflow.items()) node.erase("_meta");
  return workflow;
}

// A chained upscale by `scale` with `impl`, the rest left at their defaults.
UpscaleStep upscale_by(double scale, const std::string& impl) {
  UpscaleStep step;
  step.scale = scale;
  step.impl = impl;
  return step;
}

TEST(GenerationRequestValidation, AcceptsDefaultsWithAModel) {
  EXPECT_NO_THROW(validate_generation_request(valid_request()));
}

TEST(GenerationRequestValidation, AcceptsTheRangeBounds) {
  GenerationRequest low = valid_request();
  low.width = 64;
  low.height = 64;
  low.steps = 1;
  low.cfg = 0.0;
  EXPECT_NO_THROW(validate_generation_request(low));
  GenerationRequest high = valid_request();
  high.width = 16384;
  high.height = 16384;
  high.steps = 10000;
  high.cfg = 100.0;
  EXPECT_NO_THROW(validate_generation_request(high));
}

TEST(GenerationRequestValidation, RequiresAModel) {
  GenerationRequest request = valid_request();
  request.checkpoint.clear();
  expect_rejected(request, "model");
}

TEST(GenerationRequestValidation, SizeMustBeAMultipleOfEightInRange) {
  for (int bad : {0, 56, 63, 100, 16392, -512}) {
    GenerationRequest wide = valid_request();
    wide.width = bad;
    expect_rejected(wide, "width");
    GenerationRequest tall = valid_request();
    tall.height = bad;
    expect_rejected(tall, "height");
  }
}

TEST(GenerationRequestValidation, StepsInRange) {
  for (int bad : {0, -1, 10001}) {
    GenerationRequest request = valid_request();
    request.steps = bad;
    expect_rejected(request, "steps");
  }
}

TEST(GenerationRequestValidation, CfgInRangeAndNotNan) {
  for (double bad : {-0.5, 100.01, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity()}) {
    GenerationRequest request = valid_request();
    request.cfg = bad;
    expect_rejected(request, "cfg");
  }
}

TEST(GenerationRequestValidation, DenoiseInHalfOpenUnitInterval) {
  for (double bad : {0.0, -0.1, 1.01, std::numeric_limits<double>::quiet_NaN()}) {
    GenerationRequest request = valid_request();
    request.init_image = "cat.png";
    request.denoise = bad;
    expect_rejected(request, "denoise");
  }
}

TEST(GenerationRequestValidation, PartialDenoiseNeedsAnInitImage) {
  GenerationRequest request = valid_request();
  request.denoise = 0.6;
  expect_rejected(request, "denoise");
  request.init_image = "cat.png";
  EXPECT_NO_THROW(validate_generation_request(request));
}

TEST(GenerationWorkflow, RejectsAnInvalidRequest) {
  GenerationRequest request = valid_request();
  request.steps = 0;
  graph_test::expect_error([&] { generation_workflow(request); }, ErrorCode::kInvalidArgument);
}

// With the values of ComfyUI's default graph, the text-to-image workflow is that graph.
TEST(GenerationWorkflow, TextToImageIsComfyUisDefaultTopology) {
  const json legacy = graph_test::legacy_sd15();
  GenerationRequest request;
  request.prompt = legacy["6"]["inputs"]["text"].get<std::string>();
  request.negative_prompt = legacy["7"]["inputs"]["text"].get<std::string>();
  request.checkpoint = legacy["4"]["inputs"]["ckpt_name"].get<std::string>();
  request.seed = legacy["3"]["inputs"]["seed"].get<uint64_t>();
  request.steps = legacy["3"]["inputs"]["steps"].get<int>();
  request.cfg = legacy["3"]["inputs"]["cfg"].get<double>();
  request.filename_prefix = legacy["9"]["inputs"]["filename_prefix"].get<std::string>();
  const json workflow = generation_workflow(request);
  EXPECT_EQ(without_meta(workflow), without_meta(legacy)) << workflow.dump(2);
}

TEST(GenerationWorkflow, TextToImageCarriesEveryField) {
  GenerationRequest request = valid_request();
  request.width = 768;
  request.height = 512;
  request.steps = 30;
  request.cfg = 4.5;
  request.sampler = "dpmpp_2m";
  request.scheduler = "karras";
  request.seed = 18446744073709551615ull;
  request.filename_prefix = "night/shot";
  const json workflow = generation_workflow(request);
  const json& sampler = workflow["3"]["inputs"];
  EXPECT_EQ(sampler["seed"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ(sampler["steps"], 30);
  EXPECT_EQ(sampler["cfg"], 4.5);
  EXPECT_EQ(sampler["sampler_name"], "dpmpp_2m");
  EXPECT_EQ(sampler["scheduler"], "karras");
  EXPECT_EQ(sampler["denoise"], 1.0);
  EXPECT_EQ(workflow["5"]["class_type"], "EmptyLatentImage");
  EXPECT_EQ(workflow["5"]["inputs"], json({{"width", 768}, {"height", 512}, {"batch_size", 1}}));
  EXPECT_EQ(workflow["6"]["inputs"]["text"], "a lighthouse at dusk");
  EXPECT_EQ(workflow["7"]["inputs"]["text"], "blurry");
  EXPECT_EQ(workflow["9"]["inputs"]["filename_prefix"], "night/shot");
  EXPECT_FALSE(workflow.contains("10"));
  EXPECT_FALSE(workflow.contains("11"));
  for (const auto& [id, node] : workflow.items()) {
    EXPECT_EQ(node["_meta"]["title"], node["class_type"]) << id;
  }
}

TEST(GenerationWorkflow, ImageToImageEncodesTheLoadedImage) {
  GenerationRequest request = valid_request();
  request.init_image = "cat.png";
  request.denoise = 0.55;
  const json workflow = generation_workflow(request);
  EXPECT_EQ(workflow["10"]["class_type"], "LoadImage");
  EXPECT_EQ(workflow["10"]["inputs"], json({{"image", "cat.png"}}));
  EXPECT_FALSE(workflow.contains("11"));
  EXPECT_EQ(workflow["5"]["class_type"], "VAEEncode");
  EXPECT_EQ(workflow["5"]["inputs"], json({{"pixels", {"10", 0}}, {"vae", {"4", 2}}}));
  EXPECT_EQ(workflow["3"]["inputs"]["latent_image"], json({"5", 0}));
  EXPECT_EQ(workflow["3"]["inputs"]["denoise"], 0.55);
}

TEST(GenerationWorkflow, ImageToImageResizesTheInitImageWhenAsked) {
  GenerationRequest request = valid_request();
  request.init_image = "cat.png";
  request.resize_init_image = true;
  request.width = 640;
  request.height = 384;
  const json workflow = generation_workflow(request);
  EXPECT_EQ(workflow["11"]["class_type"], "ImageScale");
  EXPECT_EQ(workflow["11"]["inputs"], json({{"image", {"10", 0}},
                                            {"upscale_method", "bilinear"},
                                            {"width", 640},
                                            {"height", 384},
                                            {"crop", "center"}}));
  EXPECT_EQ(workflow["5"]["class_type"], "VAEEncode");
  EXPECT_EQ(workflow["5"]["inputs"]["pixels"], json({"11", 0}));
  EXPECT_EQ(workflow["3"]["inputs"]["latent_image"], json({"5", 0}));
}

TEST(GenerationWorkflow, ProducedGraphsPassWorkflowValidation) {
  std::vector<GenerationRequest> requests;
  requests.push_back(valid_request());
  GenerationRequest img2img = valid_request();
  img2img.init_image = "cat.png";
  img2img.denoise = 0.4;
  requests.push_back(img2img);
  img2img.resize_init_image = true;
  img2img.width = 1024;
  img2img.height = 576;
  img2img.sampler = "euler_ancestral";
  img2img.scheduler = "karras";
  requests.push_back(img2img);
  for (const GenerationRequest& request : requests) {
    const json workflow = generation_workflow(request);
    const graph::ValidationResult result = validate_graph(workflow, request);
    EXPECT_TRUE(result.ok) << result.error.dump() << result.node_errors.dump();
    EXPECT_EQ(result.outputs_to_execute, std::vector<std::string>{"9"});
  }
}

TEST(GenerationRequestValidation, AcceptsEightLorasAtTheStrengthBounds) {
  GenerationRequest request = valid_request();
  for (int i = 0; i < 8; ++i) request.loras.push_back({"style.safetensors", -10.0, 10.0});
  EXPECT_NO_THROW(validate_generation_request(request));
}

TEST(GenerationRequestValidation, LoraFieldsAreNamedByTheirIndex) {
  GenerationRequest unnamed = valid_request();
  unnamed.loras = {{"a.safetensors"}, {""}};
  expect_rejected(unnamed, "loras[1].name");
  for (double bad : {-10.01, 10.5, std::numeric_limits<double>::quiet_NaN()}) {
    GenerationRequest model = valid_request();
    model.loras = {{"a.safetensors", bad, 1.0}};
    expect_rejected(model, "loras[0].strength_model");
    GenerationRequest clip = valid_request();
    clip.loras = {{"a.safetensors", 1.0, bad}};
    expect_rejected(clip, "loras[0].strength_clip");
  }
}

TEST(GenerationRequestValidation, AtMostEightLoras) {
  GenerationRequest request = valid_request();
  request.loras.assign(9, {"style.safetensors"});
  expect_rejected(request, "loras");
}

TEST(LoraChoice, CommandLineTextGivesNameAndBothStrengths) {
  const LoraChoice plain = lora_choice_from_text("style.safetensors");
  EXPECT_EQ(plain.name, "style.safetensors");
  EXPECT_DOUBLE_EQ(plain.strength_model, 1.0);
  EXPECT_DOUBLE_EQ(plain.strength_clip, 1.0);
  const LoraChoice weaker = lora_choice_from_text("sub/style.safetensors:0.8");
  EXPECT_EQ(weaker.name, "sub/style.safetensors");
  EXPECT_NEAR(weaker.strength_model, 0.8, 1e-12);
  EXPECT_NEAR(weaker.strength_clip, 0.8, 1e-12);
  EXPECT_NEAR(lora_choice_from_text("style.safetensors:-1.5").strength_model, -1.5, 1e-12);
}

TEST(LoraChoice, ASuffixThatIsNoNumberBelongsToTheName) {
  for (const std::string text : {"a:b.safetensors", "style.safetensors:", "style:0.8x"}) {
    const LoraChoice choice = lora_choice_from_text(text);
    EXPECT_EQ(choice.name, text);
    EXPECT_DOUBLE_EQ(choice.strength_model, 1.0);
  }
}

TEST(LoraChoice, JsonFormRoundTripsAndDefaultsTheStrengths) {
  const json full = lora_choice_to_json({"style.safetensors", 0.25, -2.0});
  EXPECT_EQ(full, json({{"name", "style.safetensors"}, {"strength_model", 0.25},
                        {"strength_clip", -2.0}}));
  const LoraChoice back = lora_choice_from_json(full);
  EXPECT_EQ(back.name, "style.safetensors");
  EXPECT_DOUBLE_EQ(back.strength_model, 0.25);
  EXPECT_DOUBLE_EQ(back.strength_clip, -2.0);
  const LoraChoice named = lora_choice_from_json({{"name", "style.safetensors"}});
  EXPECT_DOUBLE_EQ(named.strength_model, 1.0);
  EXPECT_DOUBLE_EQ(named.strength_clip, 1.0);
}

TEST(LoraChoice, MissingLoraMessageListsTheFilesThereAre) {
  EXPECT_EQ(missing_lora_message("gone.safetensors", {"a.safetensors", "sub/b.safetensors"}),
            "'gone.safetensors' is not a file of the loras folder (available: a.safetensors, "
            "sub/b.safetensors)");
  EXPECT_EQ(missing_lora_message("gone.safetensors", {}),
            "'gone.safetensors' is not a file of the loras folder (available: none)");
}

// The ids of the nodes of `class_type`, in the order the graph lists them.
std::vector<std::string> ids_of(const json& workflow, const std::string& class_type) {
  std::vector<std::string> ids;
  for (const auto& [id, node] : workflow.items()) {
    if (node["class_type"] == class_type) ids.push_back(id);
  }
  return ids;
}

// The node whose MODEL and CLIP the sampler and both text encoders take.
void expect_patched_by(const json& workflow, const std::string& node) {
  EXPECT_EQ(workflow["3"]["inputs"]["model"], json({node, 0}));
  EXPECT_EQ(workflow["6"]["inputs"]["clip"], json({node, 1}));
  EXPECT_EQ(workflow["7"]["inputs"]["clip"], json({node, 1}));
  EXPECT_EQ(workflow["8"]["inputs"]["vae"], json({"4", 2}));
}

TEST(GenerationWorkflow, WithoutLorasTheCheckpointFeedsSamplerAndTextEncoders) {
  const json workflow = generation_workflow(valid_request());
  EXPECT_TRUE(ids_of(workflow, "LoraLoader").empty());
  expect_patched_by(workflow, "4");
}

TEST(GenerationWorkflow, OneLoraSitsBetweenTheCheckpointAndItsUsers) {
  GenerationRequest request = valid_request();
  request.loras = {{"style.safetensors", 0.8, 0.5}};
  const json workflow = generation_workflow(request);
  const std::vector<std::string> loras = ids_of(workflow, "LoraLoader");
  ASSERT_EQ(loras.size(), 1u);
  EXPECT_EQ(workflow[loras[0]]["inputs"], json({{"lora_name", "style.safetensors"},
                                                {"strength_model", 0.8},
                                                {"strength_clip", 0.5},
                                                {"model", {"4", 0}},
                                                {"clip", {"4", 1}}}));
  EXPECT_EQ(workflow[loras[0]]["_meta"]["title"], "LoraLoader");
  expect_patched_by(workflow, loras[0]);
}

TEST(GenerationWorkflow, TwoLorasChainInTheirOrder) {
  GenerationRequest request = valid_request();
  request.init_image = "cat.png";
  request.resize_init_image = true;
  request.loras = {{"first.safetensors", 1.0, 1.0}, {"second.safetensors", -0.5, 0.0}};
  const json workflow = generation_workflow(request);
  EXPECT_EQ(workflow.size(), 11u);  // 7 base nodes, LoadImage, ImageScale, 2 LoRAs: no id shared
  std::string first;
  std::string second;
  for (const std::string& id : ids_of(workflow, "LoraLoader")) {
    const std::string name = workflow[id]["inputs"]["lora_name"].get<std::string>();
    (name == "first.safetensors" ? first : second) = id;
  }
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(workflow[first]["inputs"]["model"], json({"4", 0}));
  EXPECT_EQ(workflow[first]["inputs"]["clip"], json({"4", 1}));
  EXPECT_EQ(workflow[second]["inputs"]["model"], json({first, 0}));
  EXPECT_EQ(workflow[second]["inputs"]["clip"], json({first, 1}));
  EXPECT_EQ(workflow[second]["inputs"]["strength_model"], -0.5);
  EXPECT_EQ(workflow[second]["inputs"]["strength_clip"], 0.0);
  expect_patched_by(workflow, second);
  EXPECT_EQ(workflow["5"]["inputs"]["pixels"], json({"11", 0}));
}

TEST(GenerationWorkflow, GraphsWithLorasPassWorkflowValidation) {
  const std::vector<std::string> files = {"first.safetensors", "second.safetensors"};
  for (size_t count = 0; count <= files.size(); ++count) {
    GenerationRequest request = valid_request();
    for (size_t i = 0; i < count; ++i) request.loras.push_back({files[i], 0.7, 0.3});
    graph::SchemaContext context{{request.checkpoint},
                                 {},
                                 nodes::supported_samplers(),
                                 nodes::supported_schedulers(),
                                 {{"loras", files}}};
    const graph::ValidationResult result = graph::validate_workflow(
        graph::parse_workflow(generation_workflow(request)), nodes::builtin_node_schemas(), context);
    EXPECT_TRUE(result.ok) << count << ": " << result.error.dump() << result.node_errors.dump();
    EXPECT_EQ(result.outputs_to_execute, std::vector<std::string>{"9"});
  }
}

TEST(GenerationWorkflow, GraphValidationCatchesAMissingLora) {
  GenerationRequest request = valid_request();
  request.loras = {{"missing.safetensors"}};
  const graph::ValidationResult result = validate_graph(generation_workflow(request), request);
  EXPECT_FALSE(result.ok);
  const std::vector<std::string> loras = ids_of(generation_workflow(request), "LoraLoader");
  ASSERT_EQ(loras.size(), 1u);
  EXPECT_TRUE(result.node_errors.contains(loras[0])) << result.node_errors.dump();
}

// The validation step of the server is what catches a model or image that is not installed.
TEST(GenerationWorkflow, GraphValidationCatchesAMissingInitImage) {
  GenerationRequest request = valid_request();
  request.init_image = "missing.png";
  const graph::ValidationResult result = validate_graph(generation_workflow(request), request);
  EXPECT_FALSE(result.ok);
  EXPECT_TRUE(result.node_errors.contains("10")) << result.node_errors.dump();
}

TEST(GenerationWorkflow, ChainedDiffusionUpscaleSamplesTheScaledLatentAgainAndSavesBoth) {
  GenerationRequest request = valid_request();
  request.steps = 10;
  request.upscale = upscale_by(2, "diffusion");
  request.upscale->denoise = 0.4;
  const json graph = generation_workflow(request);
  EXPECT_TRUE(validate_graph(graph, request).ok) << validate_graph(graph, request).node_errors.dump();
  EXPECT_EQ(graph["20"]["class_type"], "LatentUpscaleBy");
  EXPECT_EQ(graph["20"]["inputs"]["samples"], json::array({"3", 0}));
  EXPECT_EQ(graph["21"]["inputs"]["denoise"], 0.4);
  EXPECT_EQ(graph["21"]["inputs"]["steps"], 5) << "half the first pass";
  EXPECT_EQ(graph[kUpscaleOutputNode]["class_type"], "SaveImage");
  EXPECT_EQ(graph[kUpscaleOutputNode]["inputs"]["images"], json::array({"22", 0}));
  EXPECT_EQ(graph["9"]["inputs"]["images"], json::array({"8", 0})) << "the first image is saved too";
}

TEST(GenerationWorkflow, ChainedModelUpscaleResizesExactlyOnlyWhenStrict) {
  GenerationRequest request = valid_request();
  request.width = 64;
  request.height = 96;
  request.upscale = upscale_by(2.5, "gan");
  request.upscale->model = "x4.safetensors";
  json graph = generation_workflow(request);
  EXPECT_EQ(graph["21"]["class_type"], "ImageUpscaleWithModel");
  EXPECT_EQ(graph[kUpscaleOutputNode]["inputs"]["images"], json::array({"21", 0}));
  EXPECT_FALSE(graph.contains("23"));
  request.upscale->strict_scale = true;
  graph = generation_workflow(request);
  EXPECT_EQ(graph["23"]["inputs"]["width"], 160);
  EXPECT_EQ(graph["23"]["inputs"]["height"], 240);
  EXPECT_EQ(graph[kUpscaleOutputNode]["inputs"]["images"], json::array({"23", 0}));
}

TEST(GenerationRequestValidation, ChainedUpscaleRangesAndCombinations) {
  GenerationRequest request = valid_request();
  request.upscale = upscale_by(5, "diffusion");
  expect_rejected(request, "chain.upscale.scale");
  request.upscale = upscale_by(2, "gan");
  expect_rejected(request, "chain.upscale.model");
  request.upscale = upscale_by(2, "nearest");
  expect_rejected(request, "chain.upscale.impl");
  request.width = 8192;
  request.upscale = upscale_by(4, "diffusion");
  expect_rejected(request, "chain.upscale.scale");
}

}  // namespace
}  // namespace df
