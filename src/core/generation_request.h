// A plain generation request (prompt, size, steps, ...) and its canonical workflow graph.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df {

// A LoRA applied to the checkpoint (LoraLoader): its file under models/loras and its strengths.
struct LoraChoice {
  std::string name;
  double strength_model = 1.0;
  double strength_clip = 1.0;
};

// A LoRA as /v1 jobs and their specs carry it: {"name", "strength_model", "strength_clip"}; the
// strengths default to 1.
nlohmann::json lora_choice_to_json(const LoraChoice& lora);
LoraChoice lora_choice_from_json(const nlohmann::json& lora);
// A LoRA as the command line gives it: NAME or NAME:STRENGTH (both strengths); a suffix after the
// last ':' that is not a number is part of the name.
LoraChoice lora_choice_from_text(const std::string& text);
// Why `name` cannot be applied: "'x.safetensors' is not a file of the loras folder (available:
// a.safetensors, b.safetensors)", or "(available: none)".
std::string missing_lora_message(const std::string& name, const std::vector<std::string>& available);

// A chained upscale after the image is made: by an upscale model (GAN: ESRGAN and kin, at the
// model's own scale unless strict_scale) or by diffusion (the latent scaled and sampled again at
// a low denoise).
struct UpscaleStep {
  double scale = 2;         // 2..4
  std::string impl = "gan";  // "gan" | "diffusion"
  std::string model;        // gan: the file under models/upscale_models
  bool strict_scale = false;  // resize to exactly scale x the size (gan: the model's scale otherwise)
  double denoise = 0.35;    // diffusion: the second pass's denoise
  int steps = 0;            // diffusion: the second pass's steps (0: half the first, at least 1)
};

nlohmann::json upscale_step_to_json(const UpscaleStep& step);
UpscaleStep upscale_step_from_json(const nlohmann::json& step);

// The node id of the SaveImage of a chained upscale: artifacts keys name the node
// (".../jobs/<id>/upscale/...").
inline constexpr const char* kUpscaleOutputNode = "upscale";

struct GenerationRequest {
  std::string prompt;
  std::string negative_prompt;
  std::string checkpoint;  // ckpt_name as the runner resolves it
  int width = 512;
  int height = 512;
  int steps = 20;
  double cfg = 7.0;
  std::string sampler = "euler";
  std::string scheduler = "normal";
  uint64_t seed = 0;
  std::optional<std::string> init_image;  // LoadImage name: image-to-image when set
  bool resize_init_image = false;         // scale the init image to width x height first
  double denoise = 1.0;
  std::vector<LoraChoice> loras;          // applied in order between the checkpoint and its users
  std::string filename_prefix = "dreamforge";
  std::optional<UpscaleStep> upscale;     // saved as a second image, after the first
};

// Checks ranges (size multiple of 8 in [64, 16384], steps 1..10000, cfg 0..100, denoise in (0, 1],
// denoise < 1 only with an init image, at most 8 LoRAs, each named, strengths in [-10, 10], an
// upscale's scale in [2, 4], its size at most 16384, its model named for gan, its denoise in
// (0, 1]); throws Error(kInvalidArgument) naming the field ("loras[1].strength_clip",
// "chain.upscale.scale").
void validate_generation_request(const GenerationRequest& request);

// The canonical text-to-image graph (ComfyUI's default SD topology), or image-to-image when an
// init image is set: LoadImage (-> ImageScale) -> VAEEncode feeds the KSampler's latent. Each
// LoRA is a LoraLoader (ids "12" on) chained after the checkpoint loader "4"; the KSampler's model
// and both text encoders' clip come from the last one. A chained upscale adds its nodes (ids "20"
// on) after the decoded image and its own SaveImage, kUpscaleOutputNode.
nlohmann::json generation_workflow(const GenerationRequest& request);

}  // namespace df
