// Tests of what a job runs: the graph compiled from a generate spec, items and seeds, output
// format.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"
#include "core/job_spec.h"

namespace df {
namespace {

using nlohmann::json;

// A generate spec the way the API stores it: defaults applied, init image already saved.
Job generate_job(json overrides = json::object()) {
  Job job;
  job.type = "generate";
  job.spec = {{"prompt", "a lighthouse at dusk"},
              {"negative_prompt", "blurry"},
              {"model_id", "tiny-sd1"},
              {"width", 64},
              {"height", 96},
              {"steps", 12},
              {"guidance", 6.5},
              {"sampler", "euler_ancestral"},
              {"scheduler", "karras"},
              {"count", 1},
              {"format", "png"},
              {"denoise", 1.0}};
  job.spec.update(overrides);
  return job;
}

// The one node of `class_type` in the graph.
json node_of(const json& graph, const std::string& class_type) {
  json found;
  for (const auto& [id, node] : graph.items()) {
    if (node.at("class_type") == class_type) {
      EXPECT_TRUE(found.is_null()) << "two " << class_type << " nodes";
      found = node;
    }
  }
  EXPECT_FALSE(found.is_null()) << "no " << class_type << " node";
  return found;
}

bool has_node(const json& graph, const std::string& class_type) {
  for (const auto& [id, node] : graph.items()) {
    if (node.at("class_type") == class_type) return true;
  }
  return false;
}

Job workflow_job(json workflow, json extra = json::object()) {
  Job job;
  job.type = "workflow";
  job.spec = {{"workflow", std::move(workflow)}, {"count", 1}, {"format", "png"}};
  job.spec.update(extra);
  return job;
}

json sampler_graph(json seed) {
  return {
      {"3", {{"class_type", "KSampler"}, {"inputs", {{"seed", std::move(seed)}, {"steps", 4}}}}}};
}

TEST(JobGraph, GenerateSpecBecomesTheTextToImageGraph) {
  const json graph = job_graph(generate_job({{"seed", 1234}}));
  EXPECT_EQ(node_of(graph, "CheckpointLoaderSimple")["inputs"]["ckpt_name"], "tiny-sd1");
  const json sampler = node_of(graph, "KSampler")["inputs"];
  EXPECT_EQ(sampler["seed"], 1234);
  EXPECT_EQ(sampler["steps"], 12);
  EXPECT_EQ(sampler["cfg"], 6.5);
  EXPECT_EQ(sampler["sampler_name"], "euler_ancestral");
  EXPECT_EQ(sampler["scheduler"], "karras");
  EXPECT_EQ(sampler["denoise"], 1.0);
  const json latent = node_of(graph, "EmptyLatentImage")["inputs"];
  EXPECT_EQ(latent["width"], 64);
  EXPECT_EQ(latent["height"], 96);
  EXPECT_FALSE(has_node(graph, "LoadImage"));
  EXPECT_TRUE(has_node(graph, "SaveImage"));
  json texts = json::array();
  for (const auto& [id, node] : graph.items()) {
    if (node["class_type"] == "CLIPTextEncode") texts.push_back(node["inputs"]["text"]);
  }
  EXPECT_EQ(texts.size(), 2u);
  EXPECT_NE(std::find(texts.begin(), texts.end(), "a lighthouse at dusk"), texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(), "blurry"), texts.end());
}

TEST(JobGraph, InitImageMakesImageToImageScaledToTheRequestedSize) {
  const json graph = job_graph(generate_job({{"init_image_name", "job.png"}, {"denoise", 0.6}}));
  EXPECT_EQ(node_of(graph, "LoadImage")["inputs"]["image"], "job.png");
  const json scale = node_of(graph, "ImageScale")["inputs"];
  EXPECT_EQ(scale["width"], 64);
  EXPECT_EQ(scale["height"], 96);
  EXPECT_TRUE(has_node(graph, "VAEEncode"));
  EXPECT_FALSE(has_node(graph, "EmptyLatentImage"));
  EXPECT_EQ(node_of(graph, "KSampler")["inputs"]["denoise"], 0.6);
}

TEST(JobGraph, SpecLorasBecomeLoraLoadersWithDefaultStrengths) {
  const json graph = job_graph(generate_job(
      {{"loras", {{{"name", "style.safetensors"}, {"strength_model", 0.4}}}}}));
  const json lora = node_of(graph, "LoraLoader")["inputs"];
  EXPECT_EQ(lora["lora_name"], "style.safetensors");
  EXPECT_EQ(lora["strength_model"], 0.4);
  EXPECT_EQ(lora["strength_clip"], 1.0);
  const std::string model_from = node_of(graph, "KSampler")["inputs"]["model"][0];
  EXPECT_EQ(graph[model_from]["class_type"], "LoraLoader");
}

TEST(JobGraph, WorkflowJobRunsItsOwnGraph) {
  const json workflow = sampler_graph(5);
  EXPECT_EQ(job_graph(workflow_job(workflow)), workflow);
}

TEST(JobGraph, UnknownJobTypeIsRefused) {
  Job job = generate_job();
  job.type = "upscale";
  try {
    job_graph(job);
    ADD_FAILURE() << "accepted an unknown type";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("upscale"), std::string::npos);
  }
}

TEST(JobGraph, OutOfRangeGenerateSpecIsAValidationError) {
  try {
    job_graph(generate_job({{"width", 63}}));
    ADD_FAILURE() << "accepted width 63";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(PlanItems, SeedsCountUpFromTheSpecSeed) {
  int draws = 0;
  const auto items = plan_items(generate_job({{"seed", 100}, {"count", 3}}), [&] {
    ++draws;
    return uint64_t{7};
  });
  ASSERT_EQ(items.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(items[i].index, i);
    EXPECT_EQ(items[i].seed, 100u + static_cast<uint64_t>(i));
    EXPECT_EQ(items[i].status, "queued");
    EXPECT_EQ(items[i].step, 0);
    EXPECT_DOUBLE_EQ(items[i].progress, 0.0);
  }
  EXPECT_EQ(draws, 0);
}

TEST(PlanItems, SeedAboveInt64IsKept) {
  const uint64_t big = std::numeric_limits<uint64_t>::max() - 1;
  const auto items = plan_items(generate_job({{"seed", big}, {"count", 2}}), [] { return 0u; });
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].seed, big);
  EXPECT_EQ(items[1].seed, big + 1);
}

TEST(PlanItems, DrawsOneBaseSeedWhenTheSpecHasNone) {
  int draws = 0;
  const auto items = plan_items(generate_job({{"count", 4}}), [&] {
    ++draws;
    return uint64_t{900};
  });
  EXPECT_EQ(draws, 1);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[3].seed, 903u);
}

TEST(PlanItems, NullSeedIsDrawn) {
  const auto items = plan_items(generate_job({{"seed", nullptr}}), [] { return uint64_t{55}; });
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].seed, 55u);
}

TEST(PlanItems, CountDefaultsToOne) {
  Job job = generate_job({{"seed", 3}});
  job.spec.erase("count");
  EXPECT_EQ(plan_items(job, [] { return 0u; }).size(), 1u);
}

TEST(PlanItems, WorkflowTakesTheSeedWrittenInItsSampler) {
  const auto items = plan_items(workflow_job(sampler_graph(156680208700286), {{"count", 2}}),
                                [] { return uint64_t{1}; });
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].seed, 156680208700286u);
  EXPECT_EQ(items[1].seed, 156680208700287u);
}

TEST(PlanItems, WorkflowNoiseSeedCounts) {
  const json graph = {
      {"3", {{"class_type", "KSamplerAdvanced"}, {"inputs", {{"noise_seed", 77}, {"steps", 4}}}}}};
  EXPECT_EQ(plan_items(workflow_job(graph), [] { return uint64_t{1}; })[0].seed, 77u);
}

TEST(PlanItems, TheFirstSamplerIsTheOneWithTheLowestNumericId) {
  const json graph = {
      {"10", {{"class_type", "KSampler"}, {"inputs", {{"seed", 10}}}}},
      {"3", {{"class_type", "KSampler"}, {"inputs", {{"seed", 3}}}}}};
  EXPECT_EQ(plan_items(workflow_job(graph), [] { return uint64_t{1}; })[0].seed, 3u);
}

TEST(PlanItems, SpecSeedOverridesTheWorkflowSeed) {
  EXPECT_EQ(plan_items(workflow_job(sampler_graph(5), {{"seed", 9}}), [] { return 1u; })[0].seed,
            9u);
}

TEST(PlanItems, WorkflowWithALinkedOrNegativeSeedDraws) {
  EXPECT_EQ(
      plan_items(workflow_job(sampler_graph(json::array({"12", 0}))), [] { return 31u; })[0].seed,
      31u);
  EXPECT_EQ(plan_items(workflow_job(sampler_graph(-4)), [] { return 32u; })[0].seed, 32u);
}

TEST(JobOutputFormat, PngUnlessTheSpecSaysOtherwise) {
  Job job = generate_job();
  job.spec.erase("format");
  EXPECT_EQ(job_output_format(job), "png");
  EXPECT_EQ(job_output_format(generate_job({{"format", "webp"}})), "webp");
  EXPECT_EQ(job_output_format(generate_job({{"format", "jpeg"}})), "jpeg");
}

}  // namespace
}  // namespace df
