// Tests for trace_generation: the settings behind a SaveImage node, read from the API graph.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/generation_request.h"
#include "nodes/generation_trace.h"

namespace df::nodes {
namespace {

using nlohmann::json;

// The API-format default graph of the ComfyUI frontend (SD 1.5; SaveImage is node 9).
json default_graph() {
  return json::parse(R"({
    "3": {"class_type": "KSampler",
          "inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler",
                     "scheduler": "normal", "denoise": 1, "model": ["4", 0],
                     "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple",
          "inputs": {"ckpt_name": "v1-5-pruned-emaonly-fp16.safetensors"}},
    "5": {"class_type": "EmptyLatentImage",
          "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode",
          "inputs": {
            "text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
            "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}
  })");
}

// The default graph with KSamplerAdvanced in place of KSampler.
json advanced_graph() {
  json graph = default_graph();
  graph["3"] = {{"class_type", "KSamplerAdvanced"},
                {"inputs",
                 {{"add_noise", "enable"},
                  {"noise_seed", 42},
                  {"steps", 30},
                  {"cfg", 6.5},
                  {"sampler_name", "dpmpp_2m"},
                  {"scheduler", "karras"},
                  {"start_at_step", 0},
                  {"end_at_step", 10000},
                  {"return_with_leftover_noise", "disable"},
                  {"model", {"4", 0}},
                  {"positive", {"6", 0}},
                  {"negative", {"7", 0}},
                  {"latent_image", {"5", 0}}}}};
  return graph;
}

void expect_empty(const GenerationParameters& p) {
  EXPECT_EQ(p.prompt, "");
  EXPECT_EQ(p.negative_prompt, "");
  EXPECT_EQ(p.steps, 0);
  EXPECT_EQ(p.sampler, "");
  EXPECT_EQ(p.scheduler, "");
  EXPECT_EQ(p.cfg, 0.0);
  EXPECT_EQ(p.seed, 0u);
  EXPECT_EQ(p.model_name, "");
  EXPECT_FALSE(p.denoise.has_value());
}

TEST(TraceGeneration, DefaultGraph) {
  const GenerationParameters p = trace_generation(default_graph(), "9");
  EXPECT_EQ(p.prompt, "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,");
  EXPECT_EQ(p.negative_prompt, "text, watermark");
  EXPECT_EQ(p.seed, 156680208700286u);
  EXPECT_EQ(p.steps, 20);
  EXPECT_EQ(p.cfg, 8.0);
  EXPECT_EQ(p.sampler, "euler");
  EXPECT_EQ(p.scheduler, "normal");
  EXPECT_FALSE(p.denoise.has_value());
  EXPECT_EQ(p.model_name, "v1-5-pruned-emaonly-fp16.safetensors");
  // Not in the graph: the caller fills them.
  EXPECT_EQ(p.width, 0);
  EXPECT_EQ(p.height, 0);
  EXPECT_EQ(p.model_hash, "");
}

TEST(TraceGeneration, PartialDenoiseIsReported) {
  json graph = default_graph();
  graph["3"]["inputs"]["denoise"] = 0.6;
  EXPECT_EQ(trace_generation(graph, "9").denoise, 0.6);
}

TEST(TraceGeneration, LargeSeedsSurvive) {
  json graph = default_graph();
  graph["3"]["inputs"]["seed"] = 18446744073709551615ull;
  EXPECT_EQ(trace_generation(graph, "9").seed, 18446744073709551615ull);
}

TEST(TraceGeneration, KSamplerAdvanced) {
  json graph = advanced_graph();
  const GenerationParameters p = trace_generation(graph, "9");
  EXPECT_EQ(p.seed, 42u);
  EXPECT_EQ(p.steps, 30);
  EXPECT_EQ(p.cfg, 6.5);
  EXPECT_EQ(p.sampler, "dpmpp_2m");
  EXPECT_EQ(p.scheduler, "karras");
  EXPECT_EQ(p.prompt, "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,");
  EXPECT_EQ(p.negative_prompt, "text, watermark");
  EXPECT_EQ(p.model_name, "v1-5-pruned-emaonly-fp16.safetensors");
  EXPECT_FALSE(p.denoise.has_value());
  // KSamplerAdvanced has no denoise input; a stray one is not read.
  graph["3"]["inputs"]["denoise"] = 0.5;
  EXPECT_FALSE(trace_generation(graph, "9").denoise.has_value());
}

// A hires-fix style chain: the latent passes through an upscale and the model through a LoRA.
TEST(TraceGeneration, FollowsPassThroughNodes) {
  json graph = default_graph();
  graph["10"] = {{"class_type", "LatentUpscale"},
                 {"inputs",
                  {{"samples", {"3", 0}},
                   {"upscale_method", "nearest-exact"},
                   {"width", 768},
                   {"height", 768},
                   {"crop", "disabled"}}}};
  graph["11"] = {{"class_type", "LoraLoader"},
                 {"inputs",
                  {{"model", {"4", 0}},
                   {"clip", {"4", 1}},
                   {"lora_name", "detail.safetensors"},
                   {"strength_model", 1.0},
                   {"strength_clip", 1.0}}}};
  graph["8"]["inputs"]["samples"] = {"10", 0};
  graph["3"]["inputs"]["model"] = {"11", 0};
  const GenerationParameters p = trace_generation(graph, "9");
  EXPECT_EQ(p.steps, 20);
  EXPECT_EQ(p.model_name, "v1-5-pruned-emaonly-fp16.safetensors");
}

TEST(TraceGeneration, WorksForAPreviewNodeToo) {
  json graph = default_graph();
  graph["12"] = {{"class_type", "PreviewImage"}, {"inputs", {{"images", {"8", 0}}}}};
  EXPECT_EQ(trace_generation(graph, "12").seed, 156680208700286u);
}

TEST(TraceGeneration, RoundTripsAGenerationRequest) {
  GenerationRequest request;
  request.prompt = "a red fox, snow";
  request.negative_prompt = "lowres";
  request.checkpoint = "sd15/dreamshaper.safetensors";
  request.steps = 25;
  request.cfg = 5.5;
  request.sampler = "euler_ancestral";
  request.scheduler = "karras";
  request.seed = 7;
  request.init_image = "fox.png";
  request.resize_init_image = true;
  request.denoise = 0.45;
  const GenerationParameters p = trace_generation(generation_workflow(request), "9");
  EXPECT_EQ(p.prompt, request.prompt);
  EXPECT_EQ(p.negative_prompt, request.negative_prompt);
  EXPECT_EQ(p.model_name, request.checkpoint);
  EXPECT_EQ(p.steps, 25);
  EXPECT_EQ(p.cfg, 5.5);
  EXPECT_EQ(p.sampler, "euler_ancestral");
  EXPECT_EQ(p.scheduler, "karras");
  EXPECT_EQ(p.seed, 7u);
  EXPECT_EQ(p.denoise, 0.45);
}

TEST(TraceGeneration, UnknownSaveNodeGivesEmptyFields) {
  expect_empty(trace_generation(default_graph(), "99"));
  expect_empty(trace_generation(json::object(), "9"));
}

TEST(TraceGeneration, ImagesNotFromAVaeDecodeGiveEmptyFields) {
  json graph = default_graph();
  graph["10"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", "cat.png"}}}};
  graph["9"]["inputs"]["images"] = {"10", 0};
  expect_empty(trace_generation(graph, "9"));
}

TEST(TraceGeneration, LatentNotFromASamplerGivesEmptyFields) {
  json graph = default_graph();
  graph["8"]["inputs"]["samples"] = {"5", 0};
  expect_empty(trace_generation(graph, "9"));
}

TEST(TraceGeneration, BrokenLinksGiveEmptyFields) {
  json graph = default_graph();
  graph["9"]["inputs"]["images"] = {"404", 0};
  expect_empty(trace_generation(graph, "9"));
  graph["9"]["inputs"]["images"] = "not a link";
  expect_empty(trace_generation(graph, "9"));
  graph["9"]["inputs"]["images"] = {8, 0};
  expect_empty(trace_generation(graph, "9"));
  graph.erase("8");
  graph["9"]["inputs"]["images"] = {"8", 0};
  expect_empty(trace_generation(graph, "9"));
}

TEST(TraceGeneration, MalformedNodesGiveEmptyFields) {
  json graph = default_graph();
  graph["8"] = 5;
  expect_empty(trace_generation(graph, "9"));
  graph["8"] = {{"class_type", 5}, {"inputs", {{"samples", {"3", 0}}}}};
  expect_empty(trace_generation(graph, "9"));
  expect_empty(trace_generation(json::array({1, 2}), "9"));
}

TEST(TraceGeneration, CyclesEndTheWalk) {
  json graph = default_graph();
  graph["10"] = {{"class_type", "LatentUpscale"}, {"inputs", {{"samples", {"10", 0}}}}};
  graph["8"]["inputs"]["samples"] = {"10", 0};
  expect_empty(trace_generation(graph, "9"));
}

TEST(TraceGeneration, MissingPiecesLeaveTheirFieldsEmpty) {
  json graph = default_graph();
  graph["6"]["inputs"]["text"] = {"20", 0};  // text from another node
  graph["7"] = {{"class_type", "ConditioningZeroOut"}, {"inputs", {{"conditioning", {"6", 0}}}}};
  graph["4"]["class_type"] = "UNETLoader";
  graph["3"]["inputs"]["steps"] = "many";
  graph["3"]["inputs"]["sampler_name"] = {"21", 0};
  const GenerationParameters p = trace_generation(graph, "9");
  EXPECT_EQ(p.prompt, "");
  EXPECT_EQ(p.negative_prompt, "");
  EXPECT_EQ(p.model_name, "");
  EXPECT_EQ(p.steps, 0);
  EXPECT_EQ(p.sampler, "");
  EXPECT_EQ(p.scheduler, "normal");
  EXPECT_EQ(p.seed, 156680208700286u);
}

TEST(TraceGeneration, SamplerWithoutInputsGivesEmptyFields) {
  json graph = default_graph();
  graph["3"].erase("inputs");
  expect_empty(trace_generation(graph, "9"));
  graph["3"]["inputs"] = json::array();
  expect_empty(trace_generation(graph, "9"));
}

}  // namespace
}  // namespace df::nodes
