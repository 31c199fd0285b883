// The SD 1.x / 2.x / SDXL denoising network (diffusers UNet2DConditionModel) in libtorch.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include <ATen/ATen.h>

#include "engine/model_config.h"
#include "engine/weights.h"

namespace df::engine {

// SDXL "text_time" conditioning: pooled text embedding and micro-conditioning numbers
// (orig_h, orig_w, crop_top, crop_left, target_h, target_w; the refiner has 5, with an aesthetic
// score in place of the target size).
struct UNetAddedConditioning {
  at::Tensor text_embeds;  // [B, P]
  at::Tensor time_ids;     // [B, n]
};

// The inputs of one attention before its projections: the query input and the key and value
// inputs (the normed hidden states for self-attention, the text context for cross-attention).
struct AttentionInputs {
  at::Tensor query;
  at::Tensor key;
  at::Tensor value;
};
// ComfyUI's attn1_patch / attn2_patch: rewrites an attention's inputs before its projections
// (hypernetworks add to the keys and values).
using AttentionPatch = std::function<void(AttentionInputs& inputs)>;
struct AttentionPatches {
  std::vector<AttentionPatch> self_attention;   // every transformer block's attn1, in order
  std::vector<AttentionPatch> cross_attention;  // every transformer block's attn2, in order
};

// Weights use the diffusers names (conv_in.weight, down_blocks.1.attentions.0.proj_in.weight, ...).
// Runs in the dtype/device of the weights; inputs are converted to them.
class UNet {
 public:
  UNet(UNetConfig config, Weights weights);

  // sample [B, in_channels, h, w] (any h, w >= 1), timesteps [B] or one value for the batch
  // (fractional allowed), context [B, L, cross_attention_dim]; `added` is required exactly when
  // the config has addition_embed_type "text_time". Returns [B, out_channels, h, w].
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timesteps,
                     const at::Tensor& context,
                     const std::optional<UNetAddedConditioning>& added = std::nullopt) const;

  const UNetConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  // A copy that runs `patches` on its attentions' inputs.
  UNet with_attention_patches(AttentionPatches patches) const;

 private:
  void check_weights() const;
  void check_inputs(const at::Tensor& sample, const at::Tensor& timesteps,
                    const at::Tensor& context,
                    const std::optional<UNetAddedConditioning>& added) const;
  at::Tensor time_embedding(const at::Tensor& timesteps, int64_t batch,
                            const std::optional<UNetAddedConditioning>& added,
                            const at::TensorOptions& options) const;
  at::Tensor resnet(const Weights& w, const at::Tensor& x, const at::Tensor& temb) const;
  at::Tensor spatial_transformer(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                                 int64_t heads) const;
  at::Tensor transformer_block(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                               int64_t heads) const;
  at::Tensor attend(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                    int64_t heads, const std::vector<AttentionPatch>& patches) const;

  UNetConfig config_;
  Weights weights_;
  AttentionPatches attention_patches_;
};

}  // namespace df::engine
