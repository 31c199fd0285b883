// Dream Forge's own SD 1.x and SDXL workflows, shipped into the user's ComfyUI workflow library.
#include "api/comfy_workflow_library.h"

#include <system_error>

#include "core/error.h"
#include "core/files.h"
#include "nodes/packs/node_packs.h"
#include "graph/ui_workflow.h"

namespace df::api {
namespace {

using nlohmann::json;

// What differs between the families' workflows.
struct FamilyPreset {
  std::string family;         // as Model::family names it
  std::string label;          // in file names: dreamforge_<label>_txt2img.json
  std::string fallback_ckpt;  // the file most users of the family have
  int resolution = 512;
  int steps = 25;
  double cfg = 7.0;
};

const std::vector<FamilyPreset>& family_presets() {
  static const std::vector<FamilyPreset> presets = {
      {"sd1", "sd1", "v1-5-pruned-emaonly.safetensors", 512, 25, 7.0},
      {"sdxl", "sdxl", "sd_xl_base_1.0.safetensors", 1024, 30, 6.0},
  };
  return presets;
}

constexpr const char* kPositivePrompt =
    "a lighthouse on a rocky coast at golden hour, dramatic clouds, detailed photograph";
constexpr const char* kNegativePrompt = "blurry, low quality, watermark, text";
constexpr const char* kExampleInputImage = "example.png";
constexpr double kImageToImageDenoise = 0.6;

std::string checkpoint_for(const FamilyPreset& preset,
                           const std::vector<Model>& models) {
  const Model* test_model = nullptr;
  for (const auto& model : models) {
    if (model.family != preset.family) continue;
    if (!model.test_model) return model.ckpt_name;
    if (test_model == nullptr) test_model = &model;
  }
  return test_model != nullptr ? test_model->ckpt_name : preset.fallback_ckpt;
}

// ComfyUI's classic text-to-image graph: checkpoint, two prompts, empty latent, KSampler, VAE
// decode, save.
json text_to_image(const FamilyPreset& preset, const std::string& checkpoint) {
  return {
      {"4", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", checkpoint}}}}},
      {"6",
       {{"class_type", "CLIPTextEncode"},
        {"_meta", {{"title", "Positive prompt"}}},
        {"inputs", {{"text", kPositivePrompt}, {"clip", {"4", 1}}}}}},
      {"7",
       {{"class_type", "CLIPTextEncode"},
        {"_meta", {{"title", "Negative prompt"}}},
        {"inputs", {{"text", kNegativePrompt}, {"clip", {"4", 1}}}}}},
      {"5",
       {{"class_type", "EmptyLatentImage"},
        {"inputs",
         {{"width", preset.resolution}, {"height", preset.resolution}, {"batch_size", 1}}}}},
      {"3",
       {{"class_type", "KSampler"},
        {"inputs",
         {{"seed", 0},
          {"steps", preset.steps},
          {"cfg", preset.cfg},
          {"sampler_name", "dpmpp_2m"},
          {"scheduler", "karras"},
          {"denoise", 1.0},
          {"model", {"4", 0}},
          {"positive", {"6", 0}},
          {"negative", {"7", 0}},
          {"latent_image", {"5", 0}}}}}},
      {"8", {{"class_type", "VAEDecode"}, {"inputs", {{"samples", {"3", 0}}, {"vae", {"4", 2}}}}}},
      {"9",
       {{"class_type", "SaveImage"},
        {"inputs", {{"filename_prefix", "dreamforge_" + preset.label}, {"images", {"8", 0}}}}}},
  };
}

// The text-to-image graph with an uploaded image, encoded by the VAE, as the starting latent.
json image_to_image(const FamilyPreset& preset, const std::string& checkpoint) {
  json prompt = text_to_image(preset, checkpoint);
  prompt.erase("5");
  prompt["10"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", kExampleInputImage}}}};
  prompt["11"] = {{"class_type", "VAEEncode"},
                  {"inputs", {{"pixels", {"10", 0}}, {"vae", {"4", 2}}}}};
  prompt["3"]["inputs"]["latent_image"] = {"11", 0};
  prompt["3"]["inputs"]["denoise"] = kImageToImageDenoise;
  return prompt;
}

}  // namespace

std::vector<LibraryWorkflow> library_workflows(const std::vector<Model>& models) {
  std::vector<LibraryWorkflow> workflows;
  for (const auto& preset : family_presets()) {
    const std::string checkpoint = checkpoint_for(preset, models);
    const std::string stem = "dreamforge_" + preset.label;
    workflows.push_back({stem + "_txt2img.json", text_to_image(preset, checkpoint)});
    workflows.push_back({stem + "_img2img.json", image_to_image(preset, checkpoint)});
  }
  return workflows;
}

std::vector<std::string> install_workflow_library(const std::filesystem::path& user_dir,
                                                  const std::vector<Model>& models) {
  const std::filesystem::path folder = user_dir / "workflows";
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  if (error) {
    throw Error(ErrorCode::kInternal,
                "cannot create the workflow library " + folder.string() + ": " + error.message());
  }
  const graph::NodeSchemaRegistry schemas = nodes::builtin_node_schemas();
  std::vector<std::string> written;
  for (const auto& workflow : library_workflows(models)) {
    const std::filesystem::path path = folder / workflow.file_name;
    if (std::filesystem::exists(path)) continue;
    const std::string text = graph::ui_workflow_from_prompt(workflow.prompt, schemas).dump(2);
    write_file_atomically(path.string(), std::vector<uint8_t>(text.begin(), text.end()));
    written.push_back(workflow.file_name);
  }
  return written;
}

}  // namespace df::api
