// The models found in the checkpoints folder.
#include "registry/model_catalog.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/family/family_detection.h"
#include "engine/tensor_file.h"
#include "engine/tiny_model.h"
#include "nodes/packs/node_packs.h"

namespace df::registry {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return json();
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

int native_resolution(const std::string& family, bool test_model) {
  if (test_model) return 64;
  if (family == "sd1") return 512;
  if (family == "sd2") return 768;
  return 1024;  // SDXL and the DiT families
}

// What the weights at `path` (a diffusers folder or a checkpoint file) are; nullopt when they
// are neither. Sets the fields read from the files; id and names are the caller's.
std::optional<Model> describe_weights(const fs::path& path) {
  Model model;
  model.local_path = path.string();
  std::optional<engine::DetectedFamily> family;
  if (fs::is_directory(path) && fs::exists(path / "model_index.json")) {
    model.format = "diffusers";
    family = engine::detect_folder_family(path.string());
    model.test_model = engine::is_tiny_model(path.string());
  } else if (fs::is_regular_file(path) && engine::has_weights_extension(path.string())) {
    const engine::TensorFile checkpoint = engine::TensorFile::open(path.string());
    model.format = engine::weights_format_name(checkpoint.format());
    family = engine::detect_file_family(checkpoint);
    model.weight_dtype = engine::stored_weight_dtype(checkpoint);
  }
  if (!family) return std::nullopt;
  model.family = family->registry_name();
  model.native_resolution = native_resolution(model.family, model.test_model);
  model.capabilities = {"txt2img", "img2img"};
  model.parameters_schema = generate_parameters_schema(model.family, model.native_resolution);
  return model;
}

// A downloaded model's folder: the descriptor's record with what its weights say.
std::optional<Model> describe_downloaded(const fs::path& folder) {
  Model model = model_from_json(read_json_file(folder / kModelDescriptorFile));
  fs::path weights = (folder / model.local_path).lexically_normal();
  if (weights.filename().empty()) weights = weights.parent_path();  // "." names the folder
  if (weights.lexically_relative(folder).string().rfind("..", 0) == 0) return std::nullopt;
  auto described = describe_weights(weights);
  if (!described) return std::nullopt;
  described->id = model.id;
  described->name = model.name;
  described->kind = model.kind;
  described->version = model.version;
  described->source_uri = model.source_uri;
  described->revision = model.revision;
  described->checkpoint_hash = model.checkpoint_hash;
  described->files = model.files;
  described->extra = model.extra;
  described->ckpt_name = weights.lexically_relative(folder.parent_path()).generic_string();
  return described;
}

std::optional<Model> describe(const fs::path& path) {
  if (fs::is_directory(path) && fs::exists(path / kModelDescriptorFile)) {
    return describe_downloaded(path);
  }
  auto model = describe_weights(path);
  if (!model) return std::nullopt;
  model->id = path.filename().string();
  model->ckpt_name = model->id;
  model->name = model->test_model ? model->id + " (test model, random weights)" : model->id;
  return model;
}

json string_enum(const std::vector<std::string>& values) {
  return {{"type", "string"}, {"enum", values}};
}


}  // namespace

json generate_loras_schema() {
  auto strength = [](const char* what) {
    return json{{"type", "number"}, {"minimum", -10}, {"maximum", 10}, {"default", 1.0},
                {"description", std::string("How strongly the LoRA changes the ") + what}};
  };
  return {{"type", "array"},
          {"maxItems", 8},
          {"description", "LoRAs applied to the model in order"},
          {"items",
           {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"name"}},
            {"properties",
             {{"name", {{"type", "string"}, {"minLength", 1}, {"maxLength", 1024},
                        {"description", "A LoRA file under models/loras, as LoraLoader names it"}}},
              {"strength_model", strength("diffusion model")},
              {"strength_clip", strength("text encoder")}}}}}};
}

json generate_parameters_schema(const std::string& family, int native) {
  const bool xl = family != "sd1" && family != "sd2";  // SDXL and the DiT families
  const int max_side = xl ? 4096 : 2048;
  auto side = [&](const char* what) {
    return json{{"type", "integer"}, {"minimum", 64}, {"maximum", max_side}, {"multipleOf", 8},
                {"default", native}, {"description", std::string("Image ") + what + " in pixels"}};
  };
  auto sampler = string_enum(nodes::supported_samplers());
  sampler["default"] = "euler";
  auto scheduler = string_enum(nodes::supported_schedulers());
  scheduler["default"] = "normal";
  auto format = string_enum({"png", "jpeg", "webp"});
  format["default"] = "png";
  return {
      {"$schema", "https://json-schema.org/draft/2020-12/schema"},
      {"type", "object"},
      {"additionalProperties", false},
      {"required", {"prompt"}},
      {"properties",
       {{"prompt", {{"type", "string"}, {"minLength", 1}, {"maxLength", 20000}}},
        {"negative_prompt", {{"type", "string"}, {"maxLength", 20000}, {"default", ""}}},
        {"width", side("width")},
        {"height", side("height")},
        {"steps", {{"type", "integer"}, {"minimum", 1}, {"maximum", 150}, {"default", xl ? 30 : 20}}},
        {"guidance", {{"type", "number"}, {"minimum", 0}, {"maximum", 30}, {"default", xl ? 6.0 : 7.0}}},
        {"sampler", sampler},
        {"scheduler", scheduler},
        {"seed", {{"type", "integer"}, {"minimum", 0}, {"maximum", 18446744073709551615ULL},
                  {"description", "Seed of the first image; item i uses seed + i. Drawn when absent."}}},
        {"count", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}, {"default", 1}}},
        {"format", format},
        {"init_image", {{"type", "string"}, {"minLength", 1},
                        {"description", "Image-to-image: a PNG, JPEG or WebP image, base64 "
                                        "(optionally as a data: URL)"}}},
        {"denoise", {{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 1}, {"default", 1.0},
                     {"description", "How much of the init image to redraw"}}},
        {"loras", generate_loras_schema()}}}};
}

ModelCatalog::ModelCatalog(std::string checkpoints_dir) : checkpoints_dir_(std::move(checkpoints_dir)) {}

std::vector<Model> ModelCatalog::list() const {
  std::vector<Model> models;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir_, error)) {
    if (auto info = describe_cached(entry.path())) models.push_back(std::move(*info));
  }
  std::sort(models.begin(), models.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return models;
}

std::optional<Model> ModelCatalog::find(const std::string& id) const {
  if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..") return std::nullopt;
  const fs::path path = fs::path(checkpoints_dir_) / id;
  if (!fs::exists(path)) return std::nullopt;
  return describe_cached(path);
}

std::optional<Model> ModelCatalog::describe_cached(const fs::path& path) const {
  // A folder's own time changes when entries are added or removed; its model_index.json's or
  // descriptor's when the model is rewritten in place.
  std::error_code error;
  auto stamp = fs::last_write_time(path, error);
  for (const char* file : {"model_index.json", kModelDescriptorFile}) {
    const auto file_time = fs::last_write_time(path / file, error);
    if (!error) stamp = std::max(stamp, file_time);
  }
  std::lock_guard lock(mutex_);
  auto cached = cache_.find(path.string());
  if (cached != cache_.end() && cached->second.stamp == stamp) return cached->second.info;
  std::optional<Model> info;
  try {
    info = describe(path);
  } catch (const Error&) {
    // A corrupt or half-copied file is not a model (yet); it is not listed.
  }
  cache_[path.string()] = {stamp, info};
  return info;
}

}  // namespace df::registry
