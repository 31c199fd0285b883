// Perturbed-Attention Guidance (ComfyUI's PerturbedAttentionGuidance node): guidance away from the
// prediction of a model whose middle block's self-attention is replaced by an identity map.
#pragma once

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "engine/unet.h"

namespace df::engine {

// The perturbed self-attention: an identity attention map, so the output is the value projection.
at::Tensor value_passthrough(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             int64_t heads);

// The perturbed model's patch: value_passthrough in every self-attention of the middle block.
UNetPatches perturbed_middle_self_attention();

// guided + (cond - perturbed) * scale.
at::Tensor perturbed_attention_guidance(const at::Tensor& guided, const at::Tensor& cond,
                                        const at::Tensor& perturbed, double scale);

// The post-CFG hook: the guided estimate unchanged for scale 0, else moved by
// perturbed_attention_guidance with the conditional estimate recomputed under the perturbed
// patch. Throws Error(kUnsupported) where the guider cannot recompute it.
PostCfgFunction perturbed_attention_guidance_function(double scale);

}  // namespace df::engine
