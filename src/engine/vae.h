// The SD variational autoencoder (diffusers AutoencoderKL): images <-> latent distributions.
#pragma once

#include <ATen/ATen.h>

#include "engine/model_config.h"
#include "engine/weights.h"

namespace df::engine {

// The encoder's diagonal Gaussian over latents, before the scaling factor.
struct LatentMoments {
  at::Tensor mean;    // [B, latent_channels, h, w]
  at::Tensor logvar;  // same shape, clamped to [-30, 20]
};

// Weights use the diffusers names (encoder.down_blocks.0.resnets.0.conv1.weight, quant_conv.weight,
// decoder.up_blocks.0.upsamplers.0.conv.weight, decoder.mid_block.attentions.0.to_q.weight, ...).
// Runs in the dtype/device of the weights; inputs are converted to them.
class Vae {
 public:
  Vae(VaeConfig config, Weights weights);

  // image [B, in_channels, H, W] with values in [-1, 1]; the latent size halves H and W (rounded
  // down) once per block but the last, e.g. 512 -> 64 for the four-block SD VAEs.
  LatentMoments encode(const at::Tensor& image) const;
  // Unscaled latents z [B, latent_channels, h, w] -> image [B, out_channels, h·2^(blocks-1), ...]
  // roughly in [-1, 1], not clamped.
  at::Tensor decode(const at::Tensor& latents) const;

  const VaeConfig& config() const { return config_; }

 private:
  void check_weights() const;
  at::Tensor resnet(const Weights& w, const at::Tensor& x) const;
  at::Tensor mid_attention(const Weights& w, const at::Tensor& x) const;
  at::Tensor mid_block(const Weights& w, const at::Tensor& x) const;
  at::Tensor output_head(const Weights& w, const at::Tensor& x) const;

  VaeConfig config_;
  Weights weights_;
};

}  // namespace df::engine
