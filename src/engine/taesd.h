// The Tiny AutoEncoder for Stable Diffusion (TAESD, TAESDXL): small convolutional networks that
// map images to SD's latent space and back, as ComfyUI's VAELoader offers them.
#pragma once

#include <ATen/ATen.h>

#include "engine/weights.h"

namespace df::engine {

// Weights use the names of TAESD's own encoder and decoder files: the index of each layer in its
// sequential network, e.g. "0.weight" (the encoder's first convolution) and "3.conv.2.weight" (the
// second convolution of the decoder's first block). Runs in the dtype/device of the weights.
class TinyAutoencoder {
 public:
  // Latents are multiplied by `latent_scale` before decoding and divided by it after encoding,
  // so both sides speak the unscaled latents of the VAE the networks imitate.
  TinyAutoencoder(Weights encoder, Weights decoder, double latent_scale);

  // image [B, 3, H, W] with values in [-1, 1] -> unscaled latents [B, 4, H/8, W/8].
  at::Tensor encode(const at::Tensor& image) const;
  // Unscaled latents [B, 4, h, w] -> image [B, 3, 8h, 8w] roughly in [-1, 1], not clamped.
  at::Tensor decode(const at::Tensor& latents) const;

  static constexpr int kDownscale = 8;

 private:
  void check_weights() const;

  Weights encoder_;
  Weights decoder_;
  double latent_scale_;
};

}  // namespace df::engine
