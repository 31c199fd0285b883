// ModelPatcher: patches collected per graph, applied to a copy of the shared model once.
#include "engine/model_patcher.h"

#include <tuple>

namespace df::engine {
namespace {

// The UNet or DiT network of `model` rebuilt over `base`'s weights with `patches` applied; the
// patched copy shares every unpatched tensor, `base` is left as it is.
void apply_weight_patches(DiffusionModel& model, const DiffusionModel& base,
                          const WeightPatches& patches) {
  if (base.network) {
    model.network = base.network->with_weights(apply_patches(base.network->weights(), patches));
    return;
  }
  const UNet& unet = base.require_unet("LoRA and weight patches");
  model.unet = UNet(unet.config(), apply_patches(unet.weights(), patches));
}

}  // namespace

ModelPatcher::ModelPatcher(std::shared_ptr<const DiffusionModel> base)
    : base_(std::move(base)), memo_(std::make_shared<Memo>()) {}

ModelPatcher ModelPatcher::copy_with_fresh_memo() const {
  ModelPatcher copy = *this;
  copy.memo_ = std::make_shared<Memo>();
  return copy;
}

ModelPatcher ModelPatcher::with_weight_patches(const WeightPatches& patches) const {
  ModelPatcher copy = copy_with_fresh_memo();
  append_patches(copy.weights_, patches);
  return copy;
}

ModelPatcher ModelPatcher::with_cfg_function(CfgFunction function) const {
  ModelPatcher copy = copy_with_fresh_memo();
  copy.guidance_.cfg_function = std::move(function);
  return copy;
}

ModelPatcher ModelPatcher::with_post_cfg_function(PostCfgFunction function) const {
  ModelPatcher copy = copy_with_fresh_memo();
  copy.guidance_.post_cfg_functions.push_back(std::move(function));
  return copy;
}

ModelPatcher ModelPatcher::with_denoise_mask_function(DenoiseMaskFunction function) const {
  ModelPatcher copy = copy_with_fresh_memo();
  copy.guidance_.denoise_mask_function = std::move(function);
  return copy;
}

ModelPatcher ModelPatcher::with_schedule(NoiseSchedule schedule) const {
  ModelPatcher copy = copy_with_fresh_memo();
  copy.schedule_ = std::move(schedule);
  return copy;
}

ModelPatcher ModelPatcher::with_latent_format(LatentFormat format) const {
  ModelPatcher copy = copy_with_fresh_memo();
  copy.latent_format_ = std::move(format);
  return copy;
}

ModelPatcher ModelPatcher::with_attention_patches(const AttentionPatches& patches) const {
  UNetPatches unet_patches;
  unet_patches.attention = patches;
  return with_unet_patches(unet_patches);
}

ModelPatcher ModelPatcher::with_unet_patches(const UNetPatches& patches) const {
  ModelPatcher copy = copy_with_fresh_memo();
  copy.unet_patches_.append(patches);
  return copy;
}

std::shared_ptr<const DiffusionModel> ModelPatcher::patched() const {
  std::lock_guard lock(memo_->mutex);
  if (memo_->model) return memo_->model;
  if (weights_.empty() && !guidance_.cfg_function && guidance_.post_cfg_functions.empty() &&
      !guidance_.denoise_mask_function && unet_patches_.empty() && !schedule_ && !latent_format_) {
    memo_->model = base_;
    return base_;
  }
  auto model = std::make_shared<DiffusionModel>(*base_);
  if (!weights_.empty()) apply_weight_patches(*model, *base_, weights_);
  model->guidance = guidance_;
  if (!unet_patches_.empty()) {
    model->unet = model->require_unet("UNet block and attention patches").with_patches(unet_patches_);
  }
  if (schedule_) model->schedule = *schedule_;
  if (latent_format_) model->latent_format = *latent_format_;
  memo_->model = std::move(model);
  return memo_->model;
}

}  // namespace df::engine
