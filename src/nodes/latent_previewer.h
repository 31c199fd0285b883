// Live previews of a sampler's denoised latents, picked as ComfyUI's --preview-method auto picks
// them: the family's Tiny AutoEncoder (TAESD) when models/vae_approx holds it, else latent2rgb.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "engine/model_config.h"
#include "nodes/checkpoint_store.h"

namespace df::nodes {

// ComfyUI's largest preview side (its --preview-size default); larger previews are scaled down.
inline constexpr int64_t kMaxPreviewSide = 512;

// The tiny autoencoder ComfyUI previews a family's latents with: "taesd" for SD 1.x/2.x,
// "taesdxl" for SDXL; "" for the others (Dream Forge has no TAESD3 or TAEF1).
std::string preview_autoencoder_name(engine::Family family);

// [height, width] of the latent a TAESD preview decodes: a latent of `height` x `width` scaled
// down (by area) to at most kMaxPreviewSide / 8 on its longer side, aspect ratio kept, so the
// decoded preview is at most as large as ComfyUI shows one, and larger latents cost no more.
std::pair<int64_t, int64_t> preview_latent_size(int64_t height, int64_t width);

class LatentPreviewer {
 public:
  // Uses the family's tiny autoencoder (loaded through `models`, so cached and counted there)
  // when both of its files are in models/vae_approx, as VAELoader offers it; else latent2rgb.
  LatentPreviewer(CheckpointStore& models, engine::Family family);

  // The first image of a [B,C,H,W] latent in the sampler's (scaled) space as a JPEG: TAESD's
  // decoding at 8x the latent's size (at most kMaxPreviewSide, see preview_latent_size), or
  // latent2rgb at the latent's size.
  std::vector<uint8_t> jpeg(const at::Tensor& denoised) const;

  bool uses_tiny_autoencoder() const { return taesd_ != nullptr; }

 private:
  engine::Family family_;
  std::shared_ptr<const engine::VaeCodec> taesd_;  // null: latent2rgb
  double latent_scale_ = 1.0;                      // what TAESD's codec divides back out
};

}  // namespace df::nodes
