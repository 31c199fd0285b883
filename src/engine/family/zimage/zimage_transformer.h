// The Z-Image (Turbo) NextDiT transformer as ComfyUI runs it (Lumina2's NextDiT with the Z-Image
// options): caption and image refiners, then joint single-stream blocks with tanh-gated adaLN.
#pragma once

#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "engine/denoise/diffusion_network.h"
#include "engine/family/zimage/zimage_config.h"
#include "engine/weights.h"

namespace df::engine::zimage {

// Conventions (those of ComfyUI's model sampling for Z-Image, discrete flow with multiplier 1):
// timestep = sigma in [0, 1] (1 = pure noise); the output is the flow velocity noise - x0, so
// x0 = x - out · sigma. (Internally the network sees t = 1 - sigma, scaled by t_scale, and
// predicts x0 - noise; ComfyUI negates it, as diffusers' pipeline negates its noise_pred.)
//
// inputs.context: [B, L, cap_feat_dim] text hidden states; inputs.context_mask: [B, L], true for
// the caption's tokens (undefined: all L tokens). Each batch entry gives what it gives alone with
// only its own tokens: the caption is padded with cap_pad_token to a multiple of 32 and batch
// padding is masked out of attention. x may have any height and width; it is padded to the patch
// size by wrapping around, and the output cropped back, as ComfyUI does.
class ZImageTransformer : public DiffusionNetwork {
 public:
  // Weights in the ComfyUI naming (see zimage_layout.h); every shape is checked against `config`
  // here (Error(kCorruptFile) naming the tensor). Computes in the dtype and on the device of
  // the weights (of x_pad_token, where linear weights are stored narrower, e.g. float8).
  ZImageTransformer(ZImageConfig config, Weights weights);

  at::Tensor forward(const at::Tensor& x, const at::Tensor& timestep,
                     const NetworkInputs& inputs) const override;

  const ZImageConfig& config() const { return config_; }
  const Weights& weights() const override { return weights_; }
  std::shared_ptr<const DiffusionNetwork> with_weights(Weights weights) const override;

 private:
  ZImageConfig config_;
  Weights weights_;
};

// A ZImageTransformer from a weights file or diffusers transformer folder (load_zimage_weights),
// its config from the folder's config.json or the tensor shapes, on `device` in `dtype`.
std::unique_ptr<ZImageTransformer> load_zimage_transformer(const std::string& path,
                                                           at::Device device, at::ScalarType dtype);

}  // namespace df::engine::zimage
