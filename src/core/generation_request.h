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
};

// Checks ranges (size multiple of 8 in [64, 16384], steps 1..10000, cfg 0..100, denoise in (0, 1],
// denoise < 1 only with an init image, at most 8 LoRAs, each named, strengths in [-10, 10]); throws
// Error(kInvalidArgument) naming the field ("loras[1].strength_clip").
void validate_generation_request(const GenerationRequest& request);

// The canonical text-to-image graph (ComfyUI's default SD topology), or image-to-image when an
// init image is set: LoadImage (-> ImageScale) -> VAEEncode feeds the KSampler's latent. Each
// LoRA is a LoraLoader (ids "12" on) chained after the checkpoint loader "4"; the KSampler's model
// and both text encoders' clip come from the last one.
nlohmann::json generation_workflow(const GenerationRequest& request);

}  // namespace df
