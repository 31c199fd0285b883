// Validation of generation requests and their compilation into a workflow graph.
#include "core/generation_request.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/error.h"

namespace df {
namespace {

constexpr size_t kMaxLoras = 8;
constexpr double kMaxLoraStrength = 10.0;
constexpr int kFirstLoraNode = 12;  // after the ids of the base graph (3 to 11)
constexpr int kMaxSide = 16384;

nlohmann::json link(const std::string& node, int slot) { return nlohmann::json::array({node, slot}); }

void require(bool ok, const std::string& field, const std::string& message) {
  if (!ok) throw Error(ErrorCode::kInvalidArgument, field + ": " + message, {{"field", field}});
}

void validate_loras(const std::vector<LoraChoice>& loras) {
  require(loras.size() <= kMaxLoras, "loras", "at most " + std::to_string(kMaxLoras) + " LoRAs");
  for (size_t i = 0; i < loras.size(); ++i) {
    const std::string field = "loras[" + std::to_string(i) + "]";
    require(!loras[i].name.empty(), field + ".name", "a LoRA file name is required");
    for (auto [name, value] : {std::pair{".strength_model", loras[i].strength_model},
                               std::pair{".strength_clip", loras[i].strength_clip}}) {
      require(value >= -kMaxLoraStrength && value <= kMaxLoraStrength, field + name,
              "must be between -10 and 10");
    }
  }
}

// Chains one LoraLoader per choice after the checkpoint loader "4"; returns the node whose MODEL
// (slot 0) and CLIP (slot 1) the sampler and the text encoders take.
std::string add_lora_chain(nlohmann::json& graph, const std::vector<LoraChoice>& loras) {
  std::string last = "4";
  for (size_t i = 0; i < loras.size(); ++i) {
    const std::string id = std::to_string(kFirstLoraNode + static_cast<int>(i));
    graph[id] = {{"class_type", "LoraLoader"},
                 {"inputs",
                  {{"lora_name", loras[i].name},
                   {"strength_model", loras[i].strength_model},
                   {"strength_clip", loras[i].strength_clip},
                   {"model", link(last, 0)},
                   {"clip", link(last, 1)}}}};
    last = id;
  }
  return last;
}

void validate_upscale(const GenerationRequest& r) {
  if (!r.upscale) return;
  const UpscaleStep& up = *r.upscale;
  const std::string field = "chain.upscale";
  require(up.scale >= 2 && up.scale <= 4, field + ".scale", "must be between 2 and 4");
  require(up.impl == "gan" || up.impl == "diffusion", field + ".impl", "must be gan or diffusion");
  require(up.impl != "gan" || !up.model.empty(), field + ".model",
          "an upscale model (a file of models/upscale_models) is required for gan");
  require(up.denoise > 0 && up.denoise <= 1, field + ".denoise", "must be in (0, 1]");
  require(up.steps >= 0 && up.steps <= 10000, field + ".steps", "must be between 0 and 10000");
  require(r.width * up.scale <= kMaxSide && r.height * up.scale <= kMaxSide, field + ".scale",
          "makes the image larger than 16384 pixels on a side");
}

int scaled(int side, double scale) { return static_cast<int>(std::lround(side * scale)); }

// Adds the upscale nodes after the decoded image "8" and returns the node of the final image.
std::string add_upscale(nlohmann::json& graph, const GenerationRequest& r, const std::string& model_node) {
  const UpscaleStep& up = *r.upscale;
  std::string image;
  if (up.impl == "gan") {
    graph["20"] = {{"class_type", "UpscaleModelLoader"}, {"inputs", {{"model_name", up.model}}}};
    graph["21"] = {{"class_type", "ImageUpscaleWithModel"},
                   {"inputs", {{"upscale_model", link("20", 0)}, {"image", link("8", 0)}}}};
    image = "21";
  } else {
    graph["20"] = {{"class_type", "LatentUpscaleBy"},
                   {"inputs", {{"samples", link("3", 0)}, {"upscale_method", "nearest-exact"}, {"scale_by", up.scale}}}};
    graph["21"] = {{"class_type", "KSampler"},
                   {"inputs",
                    {{"seed", r.seed},
                     {"steps", up.steps > 0 ? up.steps : std::max(1, r.steps / 2)},
                     {"cfg", r.cfg},
                     {"sampler_name", r.sampler},
                     {"scheduler", r.scheduler},
                     {"denoise", up.denoise},
                     {"model", link(model_node, 0)},
                     {"positive", link("6", 0)},
                     {"negative", link("7", 0)},
                     {"latent_image", link("20", 0)}}}};
    graph["22"] = {{"class_type", "VAEDecode"}, {"inputs", {{"samples", link("21", 0)}, {"vae", link("4", 2)}}}};
    image = "22";
  }
  if (up.strict_scale) {
    graph["23"] = {{"class_type", "ImageScale"},
                   {"inputs",
                    {{"image", link(image, 0)},
                     {"upscale_method", "lanczos"},
                     {"width", scaled(r.width, up.scale)},
                     {"height", scaled(r.height, up.scale)},
                     {"crop", "disabled"}}}};
    image = "23";
  }
  return image;
}

}  // namespace

nlohmann::json upscale_step_to_json(const UpscaleStep& step) {
  return {{"scale", step.scale},       {"impl", step.impl},       {"model", step.model},
          {"strict_scale", step.strict_scale}, {"denoise", step.denoise}, {"steps", step.steps}};
}

UpscaleStep upscale_step_from_json(const nlohmann::json& step) {
  UpscaleStep out;
  out.scale = step.value("scale", out.scale);
  out.impl = step.value("impl", out.impl);
  out.model = step.value("model", out.model);
  out.strict_scale = step.value("strict_scale", out.strict_scale);
  out.denoise = step.value("denoise", out.denoise);
  out.steps = step.value("steps", out.steps);
  return out;
}

nlohmann::json lora_choice_to_json(const LoraChoice& lora) {
  return {{"name", lora.name},
          {"strength_model", lora.strength_model},
          {"strength_clip", lora.strength_clip}};
}

LoraChoice lora_choice_from_json(const nlohmann::json& lora) {
  return {lora.at("name").get<std::string>(), lora.value("strength_model", 1.0),
          lora.value("strength_clip", 1.0)};
}

LoraChoice lora_choice_from_text(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return {text};
  const std::string suffix = text.substr(colon + 1);
  double strength = 0.0;
  const auto [end, error] = std::from_chars(suffix.data(), suffix.data() + suffix.size(), strength);
  if (suffix.empty() || error != std::errc() || end != suffix.data() + suffix.size()) return {text};
  return {text.substr(0, colon), strength, strength};
}

std::string missing_lora_message(const std::string& name, const std::vector<std::string>& available) {
  std::string listed;
  for (const auto& file : available) listed += (listed.empty() ? "" : ", ") + file;
  return "'" + name + "' is not a file of the loras folder (available: " +
         (listed.empty() ? "none" : listed) + ")";
}

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
  validate_loras(r.loras);
  validate_upscale(r);
}

nlohmann::json generation_workflow(const GenerationRequest& r) {
  validate_generation_request(r);
  nlohmann::json graph = nlohmann::json::object();
  const std::string patched = add_lora_chain(graph, r.loras);
  graph.update(nlohmann::json{
      {"4", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", r.checkpoint}}}}},
      {"6",
       {{"class_type", "CLIPTextEncode"},
        {"inputs", {{"text", r.prompt}, {"clip", link(patched, 1)}}}}},
      {"7",
       {{"class_type", "CLIPTextEncode"},
        {"inputs", {{"text", r.negative_prompt}, {"clip", link(patched, 1)}}}}},
      {"3",
       {{"class_type", "KSampler"},
        {"inputs",
         {{"seed", r.seed},
          {"steps", r.steps},
          {"cfg", r.cfg},
          {"sampler_name", r.sampler},
          {"scheduler", r.scheduler},
          {"denoise", r.denoise},
          {"model", link(patched, 0)},
          {"positive", link("6", 0)},
          {"negative", link("7", 0)},
          {"latent_image", link("5", 0)}}}}},
      {"8", {{"class_type", "VAEDecode"}, {"inputs", {{"samples", link("3", 0)}, {"vae", link("4", 2)}}}}},
      {"9",
       {{"class_type", "SaveImage"},
        {"inputs", {{"filename_prefix", r.filename_prefix}, {"images", link("8", 0)}}}}},
  });
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
  if (r.upscale) {
    const std::string image = add_upscale(graph, r, patched);
    graph[kUpscaleOutputNode] = {{"class_type", "SaveImage"},
                                 {"inputs", {{"filename_prefix", r.filename_prefix + "-upscale"},
                                             {"images", link(image, 0)}}}};
  }
  for (auto& [id, node] : graph.items()) node["_meta"] = {{"title", node["class_type"]}};
  return graph;
}

}  // namespace df
