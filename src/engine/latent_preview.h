// A quick RGB picture of a latent for live previews: a linear map from latent channels to RGB per
// model family (no VAE), as ComfyUI's latent2rgb previews do.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "engine/model_config.h"

namespace df::engine {

struct PreviewPixels {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3, row-major
};

// The first image of a [B,C,H,W] latent in the sampler's (scaled) latent space, as H x W RGB
// (ComfyUI's factors for SD's, SDXL's and FLUX's latents; a grey channel mean for others).
PreviewPixels latent_preview(const at::Tensor& latent, Family family);

}  // namespace df::engine
