// The SD3 / SD3.5 MMDiT (Stability's joint-attention diffusion transformer), computed as ComfyUI's
// mmdit.py computes it, from weights in Stability's original names.
#pragma once

#include <ATen/ATen.h>

#include "engine/denoise/diffusion_network.h"
#include "engine/family/sd3/sd3_config.h"
#include "engine/weights.h"

namespace df::engine::sd3 {

// Units: the timestep is ComfyUI's ModelSamplingSD3 timestep, sigma·1000 (discrete flow,
// multiplier 1000), as StableDiffusion3Pipeline passes its scheduler's timesteps; the output is
// the flow velocity, so the denoised latent is x - out·sigma.
// Inputs: context [B, L, joint_attention_dim] (CLIP-L/G states padded to 4096 wide, then T5's
// along the sequence); pooled [B, pooled_projection_dim] (ComfyUI skips the pooled embedder when
// it is undefined); context_mask and guidance are not used by this family. Latent sizes that are
// not multiples of the patch are padded circularly at the bottom and right, and the output cropped
// back, as ComfyUI does; the patch grid must fit the position embedding (Error(kInvalidArgument)).
class Sd3Transformer : public DiffusionNetwork {
 public:
  // Checks every tensor's shape against `config` (Error(kCorruptFile) naming the tensor).
  Sd3Transformer(Sd3Config config, Weights weights);

  at::Tensor forward(const at::Tensor& x, const at::Tensor& timestep,
                     const NetworkInputs& inputs) const override;

  const Sd3Config& config() const { return config_; }
  const Weights& weights() const override { return weights_; }
  std::shared_ptr<const DiffusionNetwork> with_weights(Weights weights) const override;

 private:
  struct Qkv {
    at::Tensor q, k, v;  // [B, L, hidden]
  };

  void check_inputs(const at::Tensor& x, const at::Tensor& timestep,
                    const NetworkInputs& inputs) const;
  at::Tensor embed_patches(const at::Tensor& x) const;
  at::Tensor cropped_position_embedding(int64_t grid_height, int64_t grid_width) const;
  at::Tensor conditioning(const at::Tensor& timestep, const at::Tensor& pooled,
                          int64_t batch) const;
  Qkv project_qkv(const Weights& attention, const at::Tensor& x) const;
  // One joint block: updates the image tokens `x` and the context tokens `context` (left as it
  // is by the last block, whose context stream only feeds the attention).
  void joint_block(int64_t index, at::Tensor& context, at::Tensor& x, const at::Tensor& c) const;
  at::Tensor final_layer(const at::Tensor& x, const at::Tensor& c) const;
  at::Tensor unpatchify(const at::Tensor& tokens, int64_t grid_height, int64_t grid_width) const;

  Sd3Config config_;
  Weights weights_;
  at::ScalarType dtype_;
  at::Device device_;
};

}  // namespace df::engine::sd3
