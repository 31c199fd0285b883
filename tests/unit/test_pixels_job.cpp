// Unit tests for the DGX-Pixels job compiler: model resolution and the /v1 bodies it makes.
#include <gtest/gtest.h>

#include <limits>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_schema.h"
#include "graph/validate.h"
#include "nodes/packs/node_packs.h"
#include "pixels/server/pixels_job.h"
#include "registry/model_catalog.h"
#include "test_graph_support.h"

namespace df::pixels {
namespace {

using nlohmann::json;

Model model(const std::string& id, const std::string& family, const std::string& ckpt_name,
            int native) {
  Model m;
  m.id = id;
  m.family = family;
  m.ckpt_name = ckpt_name;
  m.native_resolution = native;
  m.parameters_schema = registry::generate_parameters_schema(family, native);
  return m;
}

Model sdxl() {
  return model("sdxl-base@1.0", "sdxl", "sdxl-base@1.0/sd_xl_base_1.0.safetensors", 1024);
}
Model tiny() { return model("tiny-sd1", "sd1", "tiny-sd1", 512); }

GenerateRequest request() {
  GenerateRequest r;
  r.id = "client-job-1";
  r.prompt = "a pixel-art knight, side view";
  r.negative_prompt = "blurry";
  r.model = "sdxl";
  r.width = 512;
  r.height = 256;
  r.steps = 12;
  r.cfg_scale = 6.5;
  return r;
}

// Runs a workflow body's graph through the service's ComfyUI-compatible validation.
graph::ValidationResult validate_graph(const json& body, const Model& m) {
  graph::SchemaContext context{{m.ckpt_name},
                               {},
                               nodes::supported_samplers(),
                               nodes::supported_schedulers(),
                               {{"loras", {"pixel-style.safetensors"}}}};
  return graph::validate_workflow(graph::parse_workflow(body.at("workflow")),
                                  nodes::builtin_node_schemas(), context);
}

void expect_valid_graph(const json& body, const Model& m) {
  const graph::ValidationResult result = validate_graph(body, m);
  EXPECT_TRUE(result.ok) << result.error.dump() << "\n" << result.node_errors.dump(2);
  EXPECT_TRUE(result.node_errors.empty()) << result.node_errors.dump(2);
}

std::vector<std::string> nodes_of_class(const json& graph, const std::string& class_type) {
  std::vector<std::string> ids;
  for (const auto& [id, node] : graph.items()) {
    if (node["class_type"] == class_type) ids.push_back(id);
  }
  return ids;
}

// The one node of `class_type`.
const json& single_node(const json& graph, const std::string& class_type) {
  const auto ids = nodes_of_class(graph, class_type);
  EXPECT_EQ(ids.size(), 1u) << class_type;
  return ids.empty() ? graph : graph[ids.front()];
}

void expect_rejected(const GenerateRequest& r, const std::string& field) {
  const Error e = graph_test::expect_error([&] { job_request_body(r, sdxl()); },
                                           ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.details().value("field", ""), field) << e.what();
  EXPECT_EQ(std::string(e.what()).rfind(field + ": ", 0), 0u) << e.what();
}

TEST(PixelsModelResolution, FindsAModelByIdFileNameOrFamily) {
  const std::vector<Model> available = {tiny(), sdxl()};
  EXPECT_EQ(resolve_model("tiny-sd1", available).id, "tiny-sd1");
  EXPECT_EQ(resolve_model("sdxl-base@1.0", available).id, "sdxl-base@1.0");
  EXPECT_EQ(resolve_model("sd_xl_base_1.0.safetensors", available).id, "sdxl-base@1.0");
  EXPECT_EQ(resolve_model("sd_xl_base_1.0", available).id, "sdxl-base@1.0");
  EXPECT_EQ(resolve_model("sdxl-base@1.0/sd_xl_base_1.0.safetensors", available).id,
            "sdxl-base@1.0");
  EXPECT_EQ(resolve_model("sdxl", available).id, "sdxl-base@1.0");
  EXPECT_EQ(resolve_model("sd1", available).id, "tiny-sd1");
}

TEST(PixelsModelResolution, AFamilyMeansItsFirstModelById) {
  const std::vector<Model> available = {
      model("zz-xl", "sdxl", "zz-xl.safetensors", 1024),
      model("aa-xl", "sdxl", "aa-xl.safetensors", 1024),
  };
  EXPECT_EQ(resolve_model("sdxl", available).id, "aa-xl");
}

TEST(PixelsModelResolution, AnIdComesBeforeAFamilyOfThatName) {
  const std::vector<Model> available = {sdxl(),
                                        model("sdxl", "sd1", "mislabeled.safetensors", 512)};
  EXPECT_EQ(resolve_model("sdxl", available).family, "sd1");
}

TEST(PixelsModelResolution, AnUnknownModelListsTheAvailableIds) {
  const std::vector<Model> available = {tiny(), sdxl()};
  const Error e = graph_test::expect_error([&] { resolve_model("flux-dev", available); },
                                           ErrorCode::kModelNotFound);
  const std::string message = e.what();
  EXPECT_NE(message.find("flux-dev"), std::string::npos) << message;
  EXPECT_NE(message.find("tiny-sd1"), std::string::npos) << message;
  EXPECT_NE(message.find("sdxl-base@1.0"), std::string::npos) << message;
  EXPECT_EQ(e.details()["models"], json({"tiny-sd1", "sdxl-base@1.0"}));
  graph_test::expect_error([&] { resolve_model("sdxl", {}); }, ErrorCode::kModelNotFound);
}

TEST(PixelsJobBody, APlainRequestIsAGenerateJob) {
  GenerateRequest r = request();
  r.batch_size = 3;
  const json body = job_request_body(r, sdxl());
  EXPECT_EQ(body, json({{"type", "generate"},
                        {"model_id", "sdxl-base@1.0"},
                        {"prompt", "a pixel-art knight, side view"},
                        {"negative_prompt", "blurry"},
                        {"width", 512},
                        {"height", 256},
                        {"steps", 12},
                        {"guidance", 6.5},
                        {"count", 3}}));
}

TEST(PixelsJobBody, APlainBodyKeepsToTheModelsParameters) {
  GenerateRequest r = request();
  r.seed = 42;
  json params = job_request_body(r, sdxl());
  params.erase("type");
  params.erase("model_id");
  EXPECT_TRUE(validate_against_schema(sdxl().parameters_schema, params).empty()) << params.dump();
}

TEST(PixelsJobBody, ASeedAndALoraAreCarried) {
  GenerateRequest r = request();
  r.seed = std::numeric_limits<uint64_t>::max();
  r.lora = "pixel-style.safetensors";
  const json body = job_request_body(r, sdxl());
  EXPECT_EQ(body["seed"].get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(body["loras"], json::parse(R"([{"name": "pixel-style.safetensors",
                                            "strength_model": 1.0, "strength_clip": 1.0}])"));
}

TEST(PixelsJobBody, AnAnimationSamplesItsFramesAsOneBatchAndSavesAWebp) {
  GenerateRequest r = request();
  r.animation_frames = 6;
  r.batch_size = 2;
  const json body = job_request_body(r, sdxl());
  EXPECT_EQ(body["type"], "workflow");
  EXPECT_EQ(body["count"], 2);
  expect_valid_graph(body, sdxl());
  const json& graph = body["workflow"];
  const json& latent = single_node(graph, "EmptyLatentImage")["inputs"];
  EXPECT_EQ(latent, json({{"width", 512}, {"height", 256}, {"batch_size", 6}}));
  const std::string decoder = nodes_of_class(graph, "VAEDecode").at(0);
  const json& webp = single_node(graph, "SaveAnimatedWEBP")["inputs"];
  EXPECT_EQ(webp["images"], json({decoder, 0}));
  EXPECT_NEAR(webp["fps"].get<double>(), 8.0, 1e-9);
  EXPECT_EQ(webp["lossless"], false);
  EXPECT_EQ(webp["quality"], 90);
  EXPECT_EQ(webp["method"], "default");
  EXPECT_EQ(single_node(graph, "SaveImage")["inputs"]["images"], json({decoder, 0}));
  const json& sampler = single_node(graph, "KSampler")["inputs"];
  EXPECT_EQ(sampler["steps"], 12);
  EXPECT_NEAR(sampler["cfg"].get<double>(), 6.5, 1e-9);
  EXPECT_EQ(single_node(graph, "CheckpointLoaderSimple")["inputs"]["ckpt_name"],
            "sdxl-base@1.0/sd_xl_base_1.0.safetensors");
}

TEST(PixelsJobBody, ATilesetComposesItsTilesIntoOneSheet) {
  GenerateRequest r = request();
  r.width = 64;
  r.height = 96;
  r.tileset_grid = std::pair{3, 2};
  const json body = job_request_body(r, sdxl());
  EXPECT_EQ(body["type"], "workflow");
  EXPECT_EQ(body["count"], 1);
  expect_valid_graph(body, sdxl());
  const json& graph = body["workflow"];
  EXPECT_EQ(single_node(graph, "EmptyLatentImage")["inputs"]["batch_size"], 6);
  const json& save = single_node(graph, "SaveImage")["inputs"];
  EXPECT_EQ(save["filename_prefix"], "tileset");

  // From the saved sheet back to the empty one: one composite a tile, each from its own decode
  // of its own batch index, placed at its cell.
  std::set<int> indexes;
  std::set<std::pair<int, int>> cells;
  std::string at = save["images"][0].get<std::string>();
  while (graph[at]["class_type"] == "ImageCompositeMasked") {
    const json& composite = graph[at]["inputs"];
    EXPECT_EQ(composite["resize_source"], false);
    cells.insert({composite["x"].get<int>(), composite["y"].get<int>()});
    const json& decode = graph[composite["source"][0].get<std::string>()];
    EXPECT_EQ(decode["class_type"], "VAEDecode");
    const json& tile = graph[decode["inputs"]["samples"][0].get<std::string>()];
    EXPECT_EQ(tile["class_type"], "LatentFromBatch");
    EXPECT_EQ(tile["inputs"]["length"], 1);
    EXPECT_EQ(tile["inputs"]["samples"], json({nodes_of_class(graph, "KSampler").at(0), 0}));
    indexes.insert(tile["inputs"]["batch_index"].get<int>());
    at = composite["destination"][0].get<std::string>();
  }
  EXPECT_EQ(indexes, (std::set<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(cells, (std::set<std::pair<int, int>>{{0, 0}, {64, 0}, {128, 0},
                                                  {0, 96}, {64, 96}, {128, 96}}));
  EXPECT_EQ(graph[at]["class_type"], "EmptyImage");
  EXPECT_EQ(graph[at]["inputs"], json({{"width", 192}, {"height", 192}, {"batch_size", 1},
                                       {"color", 0}}));
  EXPECT_EQ(nodes_of_class(graph, "VAEDecode").size(), 6u);
}

TEST(PixelsJobBody, WorkflowJobsApplyTheLora) {
  GenerateRequest r = request();
  r.lora = "pixel-style.safetensors";
  r.tileset_grid = std::pair{2, 2};
  const json tileset = job_request_body(r, sdxl());
  expect_valid_graph(tileset, sdxl());
  EXPECT_EQ(single_node(tileset["workflow"], "LoraLoader")["inputs"]["lora_name"],
            "pixel-style.safetensors");
  r.tileset_grid.reset();
  r.animation_frames = 4;
  const json animation = job_request_body(r, sdxl());
  expect_valid_graph(animation, sdxl());
  EXPECT_EQ(nodes_of_class(animation["workflow"], "LoraLoader").size(), 1u);
}

TEST(PixelsJobBody, AWorkflowsSeedIsTheClientsOrComesFromItsId) {
  GenerateRequest r = request();
  r.animation_frames = 2;
  auto seed_of = [](const GenerateRequest& g) {
    return single_node(job_request_body(g, sdxl())["workflow"], "KSampler")["inputs"]["seed"]
        .get<uint64_t>();
  };
  const uint64_t drawn = seed_of(r);
  EXPECT_EQ(seed_of(r), drawn);  // the same request, the same job
  GenerateRequest other = r;
  other.id = "client-job-2";
  EXPECT_NE(seed_of(other), drawn);
  r.seed = 1234;
  EXPECT_EQ(seed_of(r), 1234u);
}

TEST(PixelsJobBody, ValuesOutOfRangeNameTheirWireField) {
  auto with = [](auto change) {
    GenerateRequest r = request();
    change(r);
    return r;
  };
  expect_rejected(with([](GenerateRequest& r) { r.width = 100; }), "size");
  expect_rejected(with([](GenerateRequest& r) { r.height = 8192; }), "size");
  expect_rejected(with([](GenerateRequest& r) { r.width = 0; }), "size");
  expect_rejected(with([](GenerateRequest& r) { r.steps = 0; }), "steps");
  expect_rejected(with([](GenerateRequest& r) { r.steps = 151; }), "steps");
  expect_rejected(with([](GenerateRequest& r) { r.cfg_scale = 30.5; }), "cfg_scale");
  expect_rejected(with([](GenerateRequest& r) { r.cfg_scale = -1; }), "cfg_scale");
  expect_rejected(with([](GenerateRequest& r) {
                    r.cfg_scale = std::numeric_limits<double>::quiet_NaN();
                  }),
                  "cfg_scale");
  expect_rejected(with([](GenerateRequest& r) { r.batch_size = 0; }), "batch_size");
  expect_rejected(with([](GenerateRequest& r) { r.batch_size = 101; }), "batch_size");
  expect_rejected(with([](GenerateRequest& r) { r.animation_frames = 0; }), "animation_frames");
  expect_rejected(with([](GenerateRequest& r) { r.animation_frames = 101; }), "animation_frames");
  expect_rejected(with([](GenerateRequest& r) { r.tileset_grid = std::pair{0, 2}; }),
                  "tileset_grid");
  expect_rejected(with([](GenerateRequest& r) { r.tileset_grid = std::pair{9, 8}; }),
                  "tileset_grid");
  // 20 tiles of 1024 pixels side by side are wider than any image node takes.
  expect_rejected(with([](GenerateRequest& r) {
                    r.width = 1024;
                    r.tileset_grid = std::pair{20, 1};
                  }),
                  "tileset_grid");
  expect_rejected(with([](GenerateRequest& r) {
                    r.animation_frames = 4;
                    r.tileset_grid = std::pair{2, 2};
                  }),
                  "tileset_grid");
}

TEST(PixelsJobBody, TheRangeBoundsAreAccepted) {
  GenerateRequest r = request();
  r.width = 64;
  r.height = 4096;
  r.steps = 150;
  r.cfg_scale = 30;
  r.batch_size = 100;
  EXPECT_NO_THROW(job_request_body(r, sdxl()));
  r.height = 64;
  r.animation_frames = 100;
  EXPECT_NO_THROW(job_request_body(r, sdxl()));
  r.animation_frames.reset();
  r.tileset_grid = std::pair{8, 8};
  expect_valid_graph(job_request_body(r, sdxl()), sdxl());
}

}  // namespace
}  // namespace df::pixels
