// ClipPatcher: text-encoder patches collected per graph, applied to a copy once.
#include "engine/clip_patcher.h"

#include "core/error.h"

namespace df::engine {

ClipPatcher::ClipPatcher(std::shared_ptr<const TextConditioner> base)
    : base_(std::move(base)), weights_(base_->encoder_count()), memo_(std::make_shared<Memo>()) {}

ClipPatcher ClipPatcher::copy_with_fresh_memo() const {
  ClipPatcher copy = *this;
  copy.memo_ = std::make_shared<Memo>();
  return copy;
}

ClipPatcher ClipPatcher::with_weight_patches(const std::vector<WeightPatches>& patches) const {
  if (patches.size() != weights_.size()) {
    throw Error(ErrorCode::kInternal, "text encoder patches for " + std::to_string(patches.size()) +
                                          " encoders, the CLIP has " +
                                          std::to_string(weights_.size()));
  }
  ClipPatcher copy = copy_with_fresh_memo();
  for (size_t i = 0; i < patches.size(); ++i) append_patches(copy.weights_[i], patches[i]);
  return copy;
}

ClipPatcher ClipPatcher::with_last_layer(int stop_at_clip_layer) const {
  ClipPatcher copy = copy_with_fresh_memo();
  copy.stop_at_clip_layer_ = stop_at_clip_layer;
  return copy;
}

ClipPatcher ClipPatcher::with_embeddings(EmbeddingFinder finder) const {
  ClipPatcher copy = copy_with_fresh_memo();
  copy.embedding_finder_ = std::move(finder);
  return copy;
}

std::shared_ptr<const TextConditioner> ClipPatcher::patched() const {
  std::lock_guard lock(memo_->mutex);
  if (memo_->conditioner) return memo_->conditioner;
  bool has_patches = false;
  for (const auto& patches : weights_) has_patches = has_patches || !patches.empty();
  if (!has_patches && stop_at_clip_layer_ == 0 && !embedding_finder_) {
    memo_->conditioner = base_;
    return base_;
  }
  TextConditioner conditioner =
      base_->with_last_layer(stop_at_clip_layer_).with_embeddings(embedding_finder_);
  if (has_patches) {
    std::vector<Weights> weights;
    for (size_t i = 0; i < weights_.size(); ++i) {
      weights.push_back(apply_patches(base_->encoder_weights(i), weights_[i]));
    }
    conditioner = conditioner.with_encoder_weights(weights);
  }
  memo_->conditioner = std::make_shared<const TextConditioner>(std::move(conditioner));
  return memo_->conditioner;
}

}  // namespace df::engine
