// The built-in node classes (ComfyUI's core image-generation nodes) and the sampler lists.
#include "graph/node_schemas.h"

#include <cstdint>
#include <limits>

namespace df::graph {
namespace {

using nlohmann::json;

InputSpec typed(std::string name, std::string type, json options = nullptr) {
  return InputSpec{std::move(name), std::move(type), std::move(options), {}, ComboSource::kFixed};
}

InputSpec combo(std::string name, std::vector<std::string> choices, json options = nullptr) {
  return InputSpec{std::move(name), "COMBO", std::move(options), std::move(choices),
                   ComboSource::kFixed};
}

InputSpec context_combo(std::string name, ComboSource source, json options = nullptr) {
  return InputSpec{std::move(name), "COMBO", std::move(options), {}, source};
}

json tooltip(const char* text) { return {{"tooltip", text}}; }

const json kSeedMax = std::numeric_limits<uint64_t>::max();

const char* const kSamplerTooltip =
    "The algorithm used when sampling, this can affect the quality, speed, and style of the "
    "generated output.";
const char* const kSchedulerTooltip =
    "The scheduler controls how noise is gradually removed to form the image.";
const char* const kCfgTooltip =
    "The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher "
    "values result in images more closely matching the prompt however too high values will "
    "negatively impact quality.";
const char* const kSaveDescription = "Saves the input images to your ComfyUI output directory.";

std::vector<HiddenInput> image_metadata_inputs() {
  return {{"prompt", "PROMPT"}, {"extra_pnginfo", "EXTRA_PNGINFO"}};
}

// Fills output_name (same as the types) and output_is_list (all false).
void set_outputs(NodeSchema& schema, std::vector<std::string> types) {
  schema.output = std::move(types);
  schema.output_name = schema.output;
  schema.output_is_list.assign(schema.output.size(), false);
}

NodeSchema checkpoint_loader_simple() {
  NodeSchema s;
  s.name = "CheckpointLoaderSimple";
  s.display_name = "Load Checkpoint";
  s.description =
      "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.";
  s.category = "loaders";
  s.required = {context_combo("ckpt_name", ComboSource::kCheckpoints,
                              tooltip("The name of the checkpoint (model) to load."))};
  set_outputs(s, {"MODEL", "CLIP", "VAE"});
  s.output_tooltips = {
      "The model used for denoising latents.",
      "The CLIP model used for encoding text prompts.",
      "The VAE model used for encoding and decoding images to and from latent space."};
  return s;
}

NodeSchema clip_text_encode() {
  NodeSchema s;
  s.name = "CLIPTextEncode";
  s.display_name = "CLIP Text Encode (Prompt)";
  s.description =
      "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the "
      "diffusion model towards generating specific images.";
  s.category = "conditioning";
  s.required = {
      typed("text", "STRING",
            {{"multiline", true},
             {"dynamicPrompts", true},
             {"tooltip", "The text to be encoded."}}),
      typed("clip", "CLIP", tooltip("The CLIP model used for encoding the text."))};
  set_outputs(s, {"CONDITIONING"});
  s.output_tooltips = {
      "A conditioning containing the embedded text used to guide the diffusion model."};
  return s;
}

NodeSchema empty_latent_image() {
  NodeSchema s;
  s.name = "EmptyLatentImage";
  s.display_name = "Empty Latent Image";
  s.description = "Create a new batch of empty latent images to be denoised via sampling.";
  s.category = "latent";
  s.required = {
      typed("width", "INT",
            {{"default", 512},
             {"min", 16},
             {"max", kMaxResolution},
             {"step", 8},
             {"tooltip", "The width of the latent images in pixels."}}),
      typed("height", "INT",
            {{"default", 512},
             {"min", 16},
             {"max", kMaxResolution},
             {"step", 8},
             {"tooltip", "The height of the latent images in pixels."}}),
      typed("batch_size", "INT",
            {{"default", 1},
             {"min", 1},
             {"max", 4096},
             {"tooltip", "The number of latent images in the batch."}})};
  set_outputs(s, {"LATENT"});
  s.output_tooltips = {"The empty latent image batch."};
  return s;
}

NodeSchema ksampler() {
  NodeSchema s;
  s.name = "KSampler";
  s.display_name = "KSampler";
  s.description =
      "Uses the provided model, positive and negative conditioning to denoise the latent image.";
  s.category = "sampling";
  s.required = {
      typed("model", "MODEL", tooltip("The model used for denoising the input latent.")),
      typed("seed", "INT",
            {{"default", 0},
             {"min", 0},
             {"max", kSeedMax},
             {"control_after_generate", true},
             {"tooltip", "The random seed used for creating the noise."}}),
      typed("steps", "INT",
            {{"default", 20},
             {"min", 1},
             {"max", 10000},
             {"tooltip", "The number of steps used in the denoising process."}}),
      typed("cfg", "FLOAT",
            {{"default", 8.0},
             {"min", 0.0},
             {"max", 100.0},
             {"step", 0.1},
             {"round", 0.01},
             {"tooltip", kCfgTooltip}}),
      context_combo("sampler_name", ComboSource::kSamplers, tooltip(kSamplerTooltip)),
      context_combo("scheduler", ComboSource::kSchedulers, tooltip(kSchedulerTooltip)),
      typed("positive", "CONDITIONING",
            tooltip("The conditioning describing the attributes you want to include in the "
                    "image.")),
      typed("negative", "CONDITIONING",
            tooltip("The conditioning describing the attributes you want to exclude from the "
                    "image.")),
      typed("latent_image", "LATENT", tooltip("The latent image to denoise.")),
      typed("denoise", "FLOAT",
            {{"default", 1.0},
             {"min", 0.0},
             {"max", 1.0},
             {"step", 0.01},
             {"tooltip",
              "The amount of denoising applied, lower values will maintain the structure of the "
              "initial image allowing for image to image sampling."}})};
  set_outputs(s, {"LATENT"});
  s.output_tooltips = {"The denoised latent."};
  return s;
}

NodeSchema ksampler_advanced() {
  NodeSchema s;
  s.name = "KSamplerAdvanced";
  s.display_name = "KSampler (Advanced)";
  s.category = "sampling";
  s.required = {
      typed("model", "MODEL"),
      combo("add_noise", {"enable", "disable"}),
      typed("noise_seed", "INT",
            {{"default", 0}, {"min", 0}, {"max", kSeedMax}, {"control_after_generate", true}}),
      typed("steps", "INT", {{"default", 20}, {"min", 1}, {"max", 10000}}),
      typed("cfg", "FLOAT",
            {{"default", 8.0}, {"min", 0.0}, {"max", 100.0}, {"step", 0.1}, {"round", 0.01}}),
      context_combo("sampler_name", ComboSource::kSamplers),
      context_combo("scheduler", ComboSource::kSchedulers),
      typed("positive", "CONDITIONING"),
      typed("negative", "CONDITIONING"),
      typed("latent_image", "LATENT"),
      typed("start_at_step", "INT", {{"default", 0}, {"min", 0}, {"max", 10000}}),
      typed("end_at_step", "INT", {{"default", 10000}, {"min", 0}, {"max", 10000}}),
      combo("return_with_leftover_noise", {"disable", "enable"})};
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema vae_decode() {
  NodeSchema s;
  s.name = "VAEDecode";
  s.display_name = "VAE Decode";
  s.description = "Decodes latent images back into pixel space images.";
  s.category = "latent";
  s.required = {typed("samples", "LATENT", tooltip("The latent to be decoded.")),
                typed("vae", "VAE", tooltip("The VAE model used for decoding the latent."))};
  set_outputs(s, {"IMAGE"});
  s.output_tooltips = {"The decoded image."};
  return s;
}

NodeSchema vae_encode() {
  NodeSchema s;
  s.name = "VAEEncode";
  s.display_name = "VAE Encode";
  s.category = "latent";
  s.required = {typed("pixels", "IMAGE"), typed("vae", "VAE")};
  set_outputs(s, {"LATENT"});
  return s;
}

NodeSchema load_image() {
  NodeSchema s;
  s.name = "LoadImage";
  s.display_name = "Load Image";
  s.category = "image";
  s.required = {context_combo("image", ComboSource::kInputImages, {{"image_upload", true}})};
  set_outputs(s, {"IMAGE", "MASK"});
  return s;
}

NodeSchema save_image() {
  NodeSchema s;
  s.name = "SaveImage";
  s.display_name = "Save Image";
  s.description = kSaveDescription;
  s.category = "image";
  s.required = {
      typed("images", "IMAGE", tooltip("The images to save.")),
      typed("filename_prefix", "STRING",
            {{"default", "ComfyUI"},
             {"tooltip",
              "The prefix for the file to save. This may include formatting information such as "
              "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."}})};
  s.hidden = image_metadata_inputs();
  s.output_node = true;
  return s;
}

NodeSchema preview_image() {
  NodeSchema s;
  s.name = "PreviewImage";
  s.display_name = "Preview Image";
  s.description = kSaveDescription;  // ComfyUI's PreviewImage inherits SaveImage's description
  s.category = "image";
  s.required = {typed("images", "IMAGE")};
  s.hidden = image_metadata_inputs();
  s.output_node = true;
  return s;
}

NodeSchema image_scale() {
  NodeSchema s;
  s.name = "ImageScale";
  s.display_name = "Upscale Image";
  s.category = "image/upscaling";
  s.required = {
      typed("image", "IMAGE"),
      combo("upscale_method", {"nearest-exact", "bilinear", "area", "bicubic", "lanczos"}),
      typed("width", "INT", {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}}),
      typed("height", "INT", {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}}),
      combo("crop", {"disabled", "center"})};
  set_outputs(s, {"IMAGE"});
  return s;
}

}  // namespace

const std::vector<std::string>& supported_samplers() {
  static const std::vector<std::string> samplers = {
      "euler",        "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "dpmpp_sde",
      "dpmpp_2m",     "dpmpp_2m_sde",    "lcm",  "ddim",  "uni_pc",          "uni_pc_bh2"};
  return samplers;
}

const std::vector<std::string>& supported_schedulers() {
  static const std::vector<std::string> schedulers = {
      "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal"};
  return schedulers;
}

NodeSchemaRegistry builtin_node_schemas() {
  NodeSchemaRegistry registry;
  for (auto& schema :
       {ksampler(), checkpoint_loader_simple(), clip_text_encode(), vae_decode(), vae_encode(),
        empty_latent_image(), save_image(), preview_image(), load_image(), image_scale(),
        ksampler_advanced()}) {
    registry.add(schema);
  }
  return registry;
}

}  // namespace df::graph
