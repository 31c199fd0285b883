// A plain generation request (prompt, size, steps, ...) and its canonical workflow graph.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace df {

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
  std::string filename_prefix = "dreamforge";
};

// Checks ranges (size multiple of 8 in [64, 16384], steps 1..10000, cfg 0..100, denoise in (0, 1],
// denoise < 1 only with an init image); throws Error(kInvalidArgument) naming the field.
void validate_generation_request(const GenerationRequest& request);

// The canonical text-to-image graph (ComfyUI's default SD topology), or image-to-image when an
// init image is set: LoadImage (-> ImageScale) -> VAEEncode feeds the KSampler's latent.
nlohmann::json generation_workflow(const GenerationRequest& request);

}  // namespace df
