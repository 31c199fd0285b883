// Validation of generation requests and their compilation into a workflow graph.
#include "core/generation_request.h"

#include "core/error.h"

namespace df {
namespace {

nlohmann::json link(const char* node, int slot) { return nlohmann::json::array({node, slot}); }

void require(bool ok, const std::string& field, const std::string& message) {
  if (!ok) throw Error(ErrorCode::kInvalidArgument, field + ": " + message, {{"field", field}});
}

}  // namespace

void validate_generation_request(const GenerationRequest& r) {
  require(!r.checkpoint.empty(), "model", "a model is required");
  for (auto [name, value] : {std::pair{"width", r.width}, std::pair{"height", r.height}}) {
    require(value >= 64 && value <= 16384, name, "must be between 64 and 16384");
    require(value % 8 == 0, name, "must be a multiple of 8");
  }
  require(r.steps >= 1 && r.steps <= 10000, "steps", "must be between 1 and 10000");
  require(r.cfg >= 0.0 && r.cfg <= 100.0, "cfg", "must be between 0 and 100");
  require(r.denoise > 0.0 && r.denoise <= 1.0, "denoise", "must be in (0, 1]");
  require(r.denoise == 1.0 || r.init_image.has_value(), "denoise",
          "below 1 needs an init image (image-to-image)");
}

nlohmann::json generation_workflow(const GenerationRequest& r) {
  validate_generation_request(r);
  nlohmann::json graph = {
      {"4", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", r.checkpoint}}}}},
      {"6", {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", r.prompt}, {"clip", link("4", 1)}}}}},
      {"7",
       {{"class_type", "CLIPTextEncode"},
        {"inputs", {{"text", r.negative_prompt}, {"clip", link("4", 1)}}}}},
      {"3",
       {{"class_type", "KSampler"},
        {"inputs",
         {{"seed", r.seed},
          {"steps", r.steps},
          {"cfg", r.cfg},
          {"sampler_name", r.sampler},
          {"scheduler", r.scheduler},
          {"denoise", r.denoise},
          {"model", link("4", 0)},
          {"positive", link("6", 0)},
          {"negative", link("7", 0)},
          {"latent_image", link("5", 0)}}}}},
      {"8", {{"class_type", "VAEDecode"}, {"inputs", {{"samples", link("3", 0)}, {"vae", link("4", 2)}}}}},
      {"9",
       {{"class_type", "SaveImage"},
        {"inputs", {{"filename_prefix", r.filename_prefix}, {"images", link("8", 0)}}}}},
  };
  if (r.init_image) {
    graph["10"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", *r.init_image}}}};
    const char* pixels = "10";
    if (r.resize_init_image) {
      graph["11"] = {{"class_type", "ImageScale"},
                     {"inputs",
                      {{"image", link("10", 0)},
                       {"upscale_method", "bilinear"},
                       {"width", r.width},
                       {"height", r.height},
                       {"crop", "center"}}}};
      pixels = "11";
    }
    graph["5"] = {{"class_type", "VAEEncode"},
                  {"inputs", {{"pixels", link(pixels, 0)}, {"vae", link("4", 2)}}}};
  } else {
    graph["5"] = {{"class_type", "EmptyLatentImage"},
                  {"inputs", {{"width", r.width}, {"height", r.height}, {"batch_size", 1}}}};
  }
  for (auto& [id, node] : graph.items()) node["_meta"] = {{"title", node["class_type"]}};
  return graph;
}

}  // namespace df
