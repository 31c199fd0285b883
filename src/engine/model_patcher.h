// ComfyUI's ModelPatcher for the diffusion model: a cached base model shared by every job, plus
// the patches of one graph (LoRA weights, CFG hooks) applied to a copy when sampling starts.
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "engine/adapters/weight_patch.h"
#include "engine/checkpoint_bundle.h"

namespace df::engine {

class ModelPatcher {
 public:
  explicit ModelPatcher(std::shared_ptr<const DiffusionModel> base);

  const DiffusionModel& base() const { return *base_; }
  const std::shared_ptr<const DiffusionModel>& base_ptr() const { return base_; }
  const WeightPatches& weight_patches() const { return weights_; }
  const GuidanceOptions& guidance() const { return guidance_; }

  // Copies with more patches; the base stays shared and untouched.
  ModelPatcher with_weight_patches(const WeightPatches& patches) const;
  ModelPatcher with_cfg_function(CfgFunction function) const;
  ModelPatcher with_post_cfg_function(PostCfgFunction function) const;
  // DifferentialDiffusion: the inpainting mask of each step computed by `function`.
  ModelPatcher with_denoise_mask_function(DenoiseMaskFunction function) const;
  // ComfyUI's set_model_attn1_patch / set_model_attn2_patch: adds patches of the UNet's attention
  // inputs, run after the ones added before.
  ModelPatcher with_attention_patches(const AttentionPatches& patches) const;
  // ComfyUI's block patches and attention replacements (FreeU, Deep Shrink, ...), run after the
  // ones added before.
  ModelPatcher with_unet_patches(const UNetPatches& patches) const;
  // ModelSamplingDiscrete: the model sampled with another schedule/prediction.
  ModelPatcher with_schedule(NoiseSchedule schedule) const;
  // Another latent format (ModelSamplingContinuousEDM's Playground v2.5 format).
  ModelPatcher with_latent_format(LatentFormat format) const;
  // The schedule sampling will use (the patched one, else the base's).
  const NoiseSchedule& schedule() const { return schedule_ ? *schedule_ : base_->schedule; }

  // The model with every patch applied, computed once per patcher (copies made by with_* compute
  // their own); the base itself when there is nothing to patch.
  std::shared_ptr<const DiffusionModel> patched() const;

 private:
  struct Memo {
    std::mutex mutex;
    std::shared_ptr<const DiffusionModel> model;
  };
  ModelPatcher copy_with_fresh_memo() const;

  std::shared_ptr<const DiffusionModel> base_;
  WeightPatches weights_;
  GuidanceOptions guidance_;
  UNetPatches unet_patches_;
  std::optional<NoiseSchedule> schedule_;
  std::optional<LatentFormat> latent_format_;
  std::shared_ptr<Memo> memo_;
};

}  // namespace df::engine
