// Perturbed-Attention Guidance: the middle block's identity self-attention and its post-CFG step.
#include "engine/unet_patches/perturbed_attention.h"

#include "core/error.h"

namespace df::engine {

at::Tensor value_passthrough(const at::Tensor&, const at::Tensor&, const at::Tensor& v, int64_t) {
  return v;
}

UNetPatches perturbed_middle_self_attention() {
  UNetPatches patches;
  patches.self_attention_replacements.push_back(
      {UNetBlock{UNetStage::kMiddle, 0}, std::nullopt, value_passthrough});
  return patches;
}

at::Tensor perturbed_attention_guidance(const at::Tensor& guided, const at::Tensor& cond,
                                        const at::Tensor& perturbed, double scale) {
  return guided + (cond - perturbed) * scale;
}

PostCfgFunction perturbed_attention_guidance_function(double scale) {
  return [scale](const CfgArgs& args, const at::Tensor& denoised) {
    if (scale == 0.0) return denoised;
    if (!args.cond_with_patches) {
      throw Error(ErrorCode::kUnsupported,
                  "PerturbedAttentionGuidance cannot recompute the positive prediction in this "
                  "guider");
    }
    const at::Tensor perturbed = args.cond_with_patches(perturbed_middle_self_attention());
    return perturbed_attention_guidance(denoised, args.cond_denoised, perturbed, scale);
  };
}

}  // namespace df::engine
