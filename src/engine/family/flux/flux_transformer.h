// The FLUX.1 transformer (dev and schnell) as ComfyUI's Flux model runs it.
#pragma once

#include <ATen/ATen.h>

#include "engine/denoise/diffusion_network.h"
#include "engine/family/flux/flux_config.h"
#include "engine/weights.h"

namespace df::engine::flux {

// FLUX.1 in BFL's weight naming (flux_layout.h). forward takes latents x [B, C, H, W] with
// C = config.latent_channels() (16) and any H, W (odd sizes are padded circularly to 2x2 patches
// and cropped back), timestep [B] = the flow sigma in [0, 1] (ComfyUI's ModelSamplingFlux; the
// network scales it by 1000), inputs.context = T5 states [B, L, context_in_dim], inputs.pooled =
// CLIP-L pooled [B, >= vec_in_dim] (its first vec_in_dim values are read; undefined reads zeros)
// and inputs.guidance [B] for dev models. As in ComfyUI, guidance is ignored by models without
// guidance_in (schnell) and a dev model called without it skips the guidance embedding.
// inputs.context_mask is not read: like ComfyUI's FLUX.1, every text token is attended to. The
// output [B, C, H, W] float32 is the velocity: x0 = x - output * sigma.
class FluxTransformer : public DiffusionNetwork {
 public:
  // Throws Error(kInvalidArgument) for an inconsistent config, Error(kUnsupported) for models with
  // extra input channels (in_channels != out_channels: FLUX.1 Fill, Depth) and
  // Error(kCorruptFile) naming the first tensor of flux_transformer_layout(config) that is missing
  // or has another shape.
  FluxTransformer(FluxConfig config, Weights weights);

  // Throws Error(kInvalidArgument) for inputs of the wrong rank, batch or width.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& timestep,
                     const NetworkInputs& inputs) const override;

  const FluxConfig& config() const { return config_; }
  const Weights& weights() const override { return weights_; }
  std::shared_ptr<const DiffusionNetwork> with_weights(Weights weights) const override;

 private:
  void check_inputs(const at::Tensor& x, const at::Tensor& timestep,
                    const NetworkInputs& inputs) const;
  // SiLU of the conditioning vector from the timestep, guidance and pooled text embedding.
  at::Tensor conditioning(const at::Tensor& timestep, const NetworkInputs& inputs,
                          int64_t batch) const;
  // One double-stream block on the image and text streams (updated in place of the handles).
  void double_block(const Weights& w, at::Tensor& img, at::Tensor& txt,
                    const at::Tensor& silu_vec, const at::Tensor& rope) const;
  // One single-stream block on the joined [text, image] sequence.
  at::Tensor single_block(const Weights& w, const at::Tensor& x, const at::Tensor& silu_vec,
                          const at::Tensor& rope) const;
  at::Tensor final_layer(const at::Tensor& img, const at::Tensor& silu_vec) const;

  FluxConfig config_;
  Weights weights_;
  at::ScalarType dtype_;
  at::Device device_;
};

}  // namespace df::engine::flux
