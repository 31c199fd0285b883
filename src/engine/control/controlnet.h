// ControlNet (diffusers ControlNetModel): the UNet's down path and mid block on the noisy latent
// plus an encoded hint image, whose zero convolutions give residuals for the UNet's skips and mid.
#pragma once

#include <optional>
#include <vector>

#include <ATen/ATen.h>

#include "engine/control/control_model.h"
#include "engine/control/controlnet_config.h"
#include "engine/unet.h"
#include "engine/weights.h"

namespace df::engine {

// Weights use the diffusers names: conv_in, time_embedding, add_embedding (SDXL), down_blocks,
// mid_block, controlnet_cond_embedding.{conv_in,blocks.N,conv_out}, controlnet_down_blocks.N,
// controlnet_mid_block. Runs in the dtype/device of the weights.
class ControlNet : public ControlModel {
 public:
  // Throws Error(kCorruptFile) when the weights do not fit the config.
  ControlNet(ControlNetConfig config, Weights weights);

  // The unscaled residuals (UNetControl::output per skip and middle) for `sample` [B, C, h, w] as
  // the UNet gets it, with the UNet's timesteps, context and SDXL conditioning; `hint`
  // [B or 1, conditioning_channels, 8h, 8w] in [0, 1]. Throws Error(kInvalidArgument) for a hint
  // of another size and for the conditioning of another model family.
  UNetControl forward(const at::Tensor& sample, const at::Tensor& timesteps,
                      const at::Tensor& context, const std::optional<UNetAddedConditioning>& added,
                      const at::Tensor& hint) const;

  // forward() on the call's inputs with the hint at 8x the latent's size, batched as the call.
  UNetControl control(const ControlCall& call, const HintAtSize& hint_at) const override;

  const ControlNetConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }

 private:
  void check_weights() const;
  // Throws Error(kInvalidArgument) naming both when the model's conditioning is not this net's.
  void check_fits_model(const at::Tensor& context,
                        const std::optional<UNetAddedConditioning>& added) const;
  at::Tensor embed_hint(const at::Tensor& hint, int64_t batch) const;

  ControlNetConfig config_;
  Weights weights_;
  UNet down_path_;
};

}  // namespace df::engine
