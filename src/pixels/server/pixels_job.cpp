// Compiles DGX-Pixels generate requests into /v1 job bodies: plain, animated and tileset jobs.
#include "pixels/server/pixels_job.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <iterator>

#include "core/error.h"
#include "core/generation_request.h"
#include "core/sha256.h"
#include "pixels/generate_job_body.h"
#include "nodes/packs/schema_builders.h"

namespace df::pixels {
namespace {

using nlohmann::json;

constexpr int kMaxBatch = 100;   // the /v1 count's bound
constexpr int kMaxFrames = 100;  // frames of one animation, sampled as one batch
constexpr int kMaxTiles = 64;    // LatentFromBatch picks batch indexes 0..63
constexpr double kAnimationFps = 8.0;
constexpr int kAnimationQuality = 90;

[[noreturn]] void reject(const std::string& field, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, field + ": " + message, {{"field", field}});
}

// Rejects `value` (named `what` within the wire field `field`) unless it keeps to `limits`, a
// JSON Schema number property's minimum, maximum and multipleOf (each optional).
void require_within(const json& value, const json& limits, const std::string& field,
                    const std::string& what) {
  const double number = value.get<double>();
  const std::string said = what + " " + value.dump();
  if (!std::isfinite(number)) reject(field, what + " is not a finite number");
  if (limits.contains("minimum") && number < limits["minimum"].get<double>()) {
    reject(field, said + " is below the minimum " + limits["minimum"].dump());
  }
  if (limits.contains("maximum") && number > limits["maximum"].get<double>()) {
    reject(field, said + " is above the maximum " + limits["maximum"].dump());
  }
  if (limits.contains("multipleOf")) {
    const double step = limits["multipleOf"].get<double>();
    if (step > 0 && std::fmod(number, step) != 0) {
      reject(field, said + " is not a multiple of " + limits["multipleOf"].dump());
    }
  }
}

json bounds(int minimum, int maximum) { return {{"minimum", minimum}, {"maximum", maximum}}; }

// The model's own limits for a /v1 generate parameter (none when its schema gives none).
json parameter_limits(const Model& model, const char* parameter) {
  const json properties = model.parameters_schema.value("properties", json::object());
  return properties.value(parameter, json::object());
}

void validate(const GenerateRequest& request, const Model& model) {
  require_within(request.width, parameter_limits(model, "width"), "size", "the width");
  require_within(request.height, parameter_limits(model, "height"), "size", "the height");
  require_within(request.steps, parameter_limits(model, "steps"), "steps", "the step count");
  require_within(request.cfg_scale, parameter_limits(model, "guidance"), "cfg_scale", "the scale");
  require_within(request.batch_size, bounds(1, kMaxBatch), "batch_size", "the batch size");
  if (request.animation_frames && request.tileset_grid) {
    reject("tileset_grid",
           "a job is an animation or a tileset, not both (animation_frames is set)");
  }
  if (request.animation_frames) {
    require_within(*request.animation_frames, bounds(1, kMaxFrames), "animation_frames",
                   "the frame count");
  }
  if (request.tileset_grid) {
    const auto [cols, rows] = *request.tileset_grid;
    require_within(cols, bounds(1, kMaxTiles), "tileset_grid", "the column count");
    require_within(rows, bounds(1, kMaxTiles), "tileset_grid", "the row count");
    require_within(cols * rows, bounds(1, kMaxTiles), "tileset_grid", "the cell count");
    const json sheet_side = bounds(1, nodes::schema::kMaxResolution);
    require_within(int64_t{cols} * request.width, sheet_side, "tileset_grid", "the sheet width");
    require_within(int64_t{rows} * request.height, sheet_side, "tileset_grid", "the sheet height");
  }
}

// A workflow's sampler needs a literal seed; without one from the client it comes from the
// client's id, so a repeated request is the same job while each job gets its own seed.
uint64_t seed_of(const GenerateRequest& request) {
  if (request.seed) return *request.seed;
  const std::string digest = sha256_hex(request.id.data(), request.id.size());
  return std::stoull(digest.substr(0, 16), nullptr, 16);
}

GenerationRequest generation_request(const GenerateRequest& request, const Model& model) {
  GenerationRequest generation;
  generation.prompt = request.prompt;
  generation.negative_prompt = request.negative_prompt;
  generation.checkpoint = model.ckpt_name;
  generation.width = request.width;
  generation.height = request.height;
  generation.steps = request.steps;
  generation.cfg = request.cfg_scale;
  generation.seed = seed_of(request);
  if (request.lora) generation.loras.push_back({*request.lora});
  return generation;
}

json link(const std::string& node, int slot) { return json::array({node, slot}); }

json graph_node(const std::string& class_type, json inputs) {
  return {{"class_type", class_type},
          {"inputs", std::move(inputs)},
          {"_meta", {{"title", class_type}}}};
}

// The id of the graph's first node of `class_type` (the generation graph has one of each).
std::string node_of_class(const json& graph, const std::string& class_type) {
  for (const auto& [id, node] : graph.items()) {
    if (node.value("class_type", "") == class_type) return id;
  }
  throw Error(ErrorCode::kInternal, "the generation graph has no " + class_type + " node");
}

// Adds `node` under the first numeric id above all of the graph's; returns that id.
std::string add_node(json& graph, json node) {
  int64_t highest = 0;
  for (const auto& [id, existing] : graph.items()) {
    if (!id.empty() && std::all_of(id.begin(), id.end(), ::isdigit)) {
      highest = std::max<int64_t>(highest, std::stoll(id));
    }
  }
  const std::string id = std::to_string(highest + 1);
  graph[id] = std::move(node);
  return id;
}

void set_latent_batch(json& graph, int batch_size) {
  graph[node_of_class(graph, "EmptyLatentImage")]["inputs"]["batch_size"] = batch_size;
}

// The frames as one batch, saved as images and as an animated WebP.
json animation_graph(const GenerateRequest& request, const Model& model) {
  json graph = generation_workflow(generation_request(request, model));
  set_latent_batch(graph, *request.animation_frames);
  const std::string frames = node_of_class(graph, "VAEDecode");
  add_node(graph, graph_node("SaveAnimatedWEBP", {{"images", link(frames, 0)},
                                                  {"filename_prefix", "animation"},
                                                  {"fps", kAnimationFps},
                                                  {"lossless", false},
                                                  {"quality", kAnimationQuality},
                                                  {"method", "default"}}));
  return graph;
}

// The tiles as one batch, each decoded on its own and composed into a cols x rows sheet, row by
// row from the top left; only the sheet is saved.
json tileset_graph(const GenerateRequest& request, const Model& model) {
  const auto [cols, rows] = *request.tileset_grid;
  json graph = generation_workflow(generation_request(request, model));
  set_latent_batch(graph, cols * rows);
  const std::string decoder = node_of_class(graph, "VAEDecode");
  const json samples = graph[decoder]["inputs"]["samples"];
  const json vae = graph[decoder]["inputs"]["vae"];
  graph.erase(node_of_class(graph, "SaveImage"));
  graph.erase(decoder);
  std::string sheet = add_node(graph, graph_node("EmptyImage", {{"width", request.width * cols},
                                                                {"height", request.height * rows},
                                                                {"batch_size", 1},
                                                                {"color", 0}}));
  for (int i = 0; i < cols * rows; ++i) {
    const std::string tile = add_node(
        graph,
        graph_node("LatentFromBatch", {{"samples", samples}, {"batch_index", i}, {"length", 1}}));
    const std::string pixels =
        add_node(graph, graph_node("VAEDecode", {{"samples", link(tile, 0)}, {"vae", vae}}));
    sheet = add_node(graph, graph_node("ImageCompositeMasked", {{"destination", link(sheet, 0)},
                                                                {"source", link(pixels, 0)},
                                                                {"x", (i % cols) * request.width},
                                                                {"y", (i / cols) * request.height},
                                                                {"resize_source", false}}));
  }
  add_node(graph,
           graph_node("SaveImage", {{"filename_prefix", "tileset"}, {"images", link(sheet, 0)}}));
  return graph;
}

json workflow_body(json graph, int count) {
  return {{"type", "workflow"}, {"workflow", std::move(graph)}, {"count", count}};
}

// Whether `wanted` is one of the checkpoint file names `model` answers to: its ckpt_name, that
// path's last part, and both without their extension.
bool named_by_file(const Model& model, const std::string& wanted) {
  const std::filesystem::path file(model.ckpt_name);
  const std::filesystem::path without_extension = file.parent_path() / file.stem();
  return wanted == model.ckpt_name || wanted == file.filename().string() ||
         wanted == without_extension.generic_string() || wanted == file.stem().string();
}

}  // namespace

Model resolve_model(const std::string& wanted, const std::vector<Model>& available) {
  const auto by = [&](auto matches) {
    return std::find_if(available.begin(), available.end(), matches);
  };
  if (auto model = by([&](const Model& m) { return m.id == wanted; }); model != available.end()) {
    return *model;
  }
  if (auto model = by([&](const Model& m) { return named_by_file(m, wanted); });
      model != available.end()) {
    return *model;
  }
  std::vector<Model> family;
  std::copy_if(available.begin(), available.end(), std::back_inserter(family),
               [&](const Model& m) { return m.family == wanted; });
  if (!family.empty()) {
    return *std::min_element(family.begin(), family.end(),
                             [](const Model& a, const Model& b) { return a.id < b.id; });
  }
  json ids = json::array();
  std::string listed;
  for (const Model& m : available) {
    ids.push_back(m.id);
    listed += (listed.empty() ? "" : ", ") + m.id;
  }
  throw Error(ErrorCode::kModelNotFound,
              "no installed model is '" + wanted + "' by id, checkpoint file or family; " +
                  (listed.empty() ? "none is installed" : "the models are: " + listed),
              {{"field", "model"}, {"models", ids}});
}

json job_request_body(const GenerateRequest& request, const Model& model) {
  validate(request, model);
  if (request.animation_frames) {
    return workflow_body(animation_graph(request, model), request.batch_size);
  }
  if (request.tileset_grid) return workflow_body(tileset_graph(request, model), request.batch_size);
  return generate_job_body(request, model.id);
}

}  // namespace df::pixels
