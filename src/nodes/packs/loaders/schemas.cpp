// Loader node schemas (checkpoints, diffusion models, text encoders, VAEs, LoRAs), as ComfyUI shows them.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

NodeSchema checkpoint_loader_simple() {
  NodeSchema s;
  s.name = "CheckpointLoaderSimple";
  s.display_name = "Load Checkpoint";
  s.description =
      "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.";
  s.category = "loaders";
  s.required = {context_combo("ckpt_name", graph::ComboSource::kCheckpoints,
                              tooltip("The name of the checkpoint (model) to load."))};
  set_outputs(s, {"MODEL", "CLIP", "VAE"});
  s.output_tooltips = {
      "The model used for denoising latents.",
      "The CLIP model used for encoding text prompts.",
      "The VAE model used for encoding and decoding images to and from latent space."};
  return s;
}

NodeSchema checkpoint_loader() {
  NodeSchema s;
  s.name = "CheckpointLoader";
  s.display_name = "Load Checkpoint With Config (DEPRECATED)";
  s.category = "advanced/loaders";
  s.deprecated = true;
  s.required = {model_file_combo("config_name", "configs"),
                context_combo("ckpt_name", graph::ComboSource::kCheckpoints)};
  set_outputs(s, {"MODEL", "CLIP", "VAE"});
  return s;
}

NodeSchema vae_loader() {
  NodeSchema s;
  s.name = "VAELoader";
  s.display_name = "Load VAE";
  s.category = "loaders";
  s.required = {model_file_combo("vae_name", "vae")};
  set_outputs(s, {"VAE"});
  return s;
}

graph::InputSpec lora_strength(const char* name, const char* tip) {
  nlohmann::json options = {{"default", 1.0}, {"min", -100.0}, {"max", 100.0}, {"step", 0.01}};
  if (tip != nullptr) options["tooltip"] = tip;
  return typed(name, "FLOAT", std::move(options));
}

NodeSchema lora_loader() {
  NodeSchema s;
  s.name = "LoraLoader";
  s.display_name = "Load LoRA";
  s.description =
      "LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are "
      "denoised such as applying styles. Multiple LoRA nodes can be linked together.";
  s.category = "loaders";
  s.required = {
      typed("model", "MODEL", tooltip("The diffusion model the LoRA will be applied to.")),
      typed("clip", "CLIP", tooltip("The CLIP model the LoRA will be applied to.")),
      model_file_combo("lora_name", "loras", tooltip("The name of the LoRA.")),
      lora_strength("strength_model",
                    "How strongly to modify the diffusion model. This value can be negative."),
      lora_strength("strength_clip",
                    "How strongly to modify the CLIP model. This value can be negative.")};
  set_outputs(s, {"MODEL", "CLIP"});
  s.output_tooltips = {"The modified diffusion model.", "The modified CLIP model."};
  return s;
}

NodeSchema lora_loader_model_only() {
  NodeSchema s;
  s.name = "LoraLoaderModelOnly";
  s.display_name = "LoraLoaderModelOnly";
  s.category = "loaders";
  s.required = {typed("model", "MODEL"), model_file_combo("lora_name", "loras"),
                lora_strength("strength_model", nullptr)};
  set_outputs(s, {"MODEL"});
  return s;
}

NodeSchema hypernetwork_loader() {
  NodeSchema s;
  s.name = "HypernetworkLoader";
  s.display_name = "HypernetworkLoader";
  s.category = "loaders";
  s.required = {typed("model", "MODEL"), model_file_combo("hypernetwork_name", "hypernetworks"),
                typed("strength", "FLOAT",
                      {{"default", 1.0}, {"min", -10.0}, {"max", 10.0}, {"step", 0.01}})};
  set_outputs(s, {"MODEL"});
  return s;
}

// ComfyUI's weight_dtype choices for UNETLoader.
const std::vector<std::string>& unet_weight_dtypes() {
  static const std::vector<std::string> dtypes = {"default", "fp8_e4m3fn", "fp8_e4m3fn_fast",
                                                  "fp8_e5m2"};
  return dtypes;
}

NodeSchema unet_loader() {
  NodeSchema s;
  s.name = "UNETLoader";
  s.display_name = "Load Diffusion Model";
  s.category = "advanced/loaders";
  s.required = {model_file_combo("unet_name", "diffusion_models"),
                combo("weight_dtype", unet_weight_dtypes())};
  set_outputs(s, {"MODEL"});
  return s;
}

// CLIPLoader's text encoder types, in ComfyUI's order (Dream Forge runs "stable_diffusion").
const std::vector<std::string>& clip_types() {
  static const std::vector<std::string> types = {
      "stable_diffusion", "stable_cascade", "sd3",        "stable_audio", "mochi",
      "ltxv",             "pixart",         "cosmos",     "lumina2",      "wan",
      "hidream",          "chroma",         "ace",        "omnigen2",     "qwen_image",
      "hunyuan_image",    "flux2",          "ovis",       "longcat_image", "cogvideox",
      "lens",             "pixeldit",       "ideogram4",  "boogu",        "krea2",
      "joyimage",         "mage",           "minimax"};
  return types;
}

// DualCLIPLoader's types, in ComfyUI's order (Dream Forge runs "sdxl").
const std::vector<std::string>& dual_clip_types() {
  static const std::vector<std::string> types = {
      "sdxl",          "sd3",   "flux",   "hunyuan_video", "hidream",          "hunyuan_image",
      "hunyuan_video_15", "kandinsky5", "kandinsky5_image", "ltxv", "newbie", "ace"};
  return types;
}

graph::InputSpec clip_device() {
  return combo("device", {"default", "cpu"}, {{"advanced", true}});
}

NodeSchema clip_loader() {
  NodeSchema s;
  s.name = "CLIPLoader";
  s.display_name = "Load CLIP";
  s.category = "advanced/loaders";
  s.required = {model_file_combo("clip_name", "text_encoders"), combo("type", clip_types())};
  s.optional = {clip_device()};
  set_outputs(s, {"CLIP"});
  return s;
}

NodeSchema dual_clip_loader() {
  NodeSchema s;
  s.name = "DualCLIPLoader";
  s.display_name = "DualCLIPLoader";
  s.category = "advanced/loaders";
  s.required = {model_file_combo("clip_name1", "text_encoders"),
                model_file_combo("clip_name2", "text_encoders"), combo("type", dual_clip_types())};
  s.optional = {clip_device()};
  set_outputs(s, {"CLIP"});
  return s;
}

NodeSchema triple_clip_loader() {
  NodeSchema s;
  s.name = "TripleCLIPLoader";
  s.display_name = "TripleCLIPLoader";
  s.category = "advanced/loaders";
  s.python_module = "comfy_extras.nodes_sd3";
  s.description = "[Recipes]\n\nsd3: clip-l, clip-g, t5";
  s.required = {model_file_combo("clip_name1", "text_encoders"),
                model_file_combo("clip_name2", "text_encoders"),
                model_file_combo("clip_name3", "text_encoders")};
  set_outputs(s, {"CLIP"});
  return s;
}

}  // namespace

void add_loaders_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(checkpoint_loader_simple());
  registry.add(checkpoint_loader());
  registry.add(vae_loader());
  registry.add(lora_loader());
  registry.add(lora_loader_model_only());
  registry.add(hypernetwork_loader());
  registry.add(unet_loader());
  registry.add(clip_loader());
  registry.add(dual_clip_loader());
  registry.add(triple_clip_loader());
}

}  // namespace df::nodes
