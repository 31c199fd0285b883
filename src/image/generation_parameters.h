// The settings of one generated image and their A1111-style "parameters" text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace df {

// Sampler and scheduler hold ComfyUI names ("euler_ancestral", "karras"). model_hash is the
// checkpoint's sha256 in hex (the text carries its first 10 characters, A1111's "AutoV2" hash).
struct GenerationParameters {
  std::string prompt, negative_prompt;
  int steps = 0;
  std::string sampler, scheduler;
  double cfg = 0;
  uint64_t seed = 0;
  int width = 0, height = 0;
  std::string model_name, model_hash;
  std::optional<double> denoise;  // img2img strength; unset for text-to-image
};

// A1111's layout, which A1111, Forge, CivitAI and most image viewers read:
//   <prompt>
//   Negative prompt: <negative prompt>            (only when there is one)
//   Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.5, Seed: 1, Size: 512x768,
//   Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.75
// (the last part on one line). Sampler and scheduler use A1111's display names where A1111 has the
// same algorithm and the ComfyUI name otherwise; empty sampler, scheduler, model hash or model name
// are left out; values holding ',', ':' or a line break are written as JSON strings.
std::string format_a1111_parameters(const GenerationParameters& parameters);

// The inverse: display names map back to ComfyUI names, A1111's older combined sampler names
// ("DPM++ 2M Karras") are split, unknown fields are ignored. Each prompt line loses its leading
// and trailing blanks, as in A1111's own reader. Throws Error(kInvalidArgument) when a known
// field holds a malformed value (e.g. "Steps: many").
GenerationParameters parse_a1111_parameters(const std::string& text);

}  // namespace df
