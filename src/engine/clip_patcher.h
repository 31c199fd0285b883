// ComfyUI's CLIP object: cached text encoders shared by every job, plus one graph's patches
// (LoRA weights per encoder, the last layer taken, where embeddings are found) applied to a copy when a prompt is encoded.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "engine/adapters/weight_patch.h"
#include "engine/text_conditioning.h"

namespace df::engine {

class ClipPatcher {
 public:
  explicit ClipPatcher(std::shared_ptr<const TextConditioner> base);

  const TextConditioner& base() const { return *base_; }
  // Encoder i's patches (one entry per text encoder of the base).
  const std::vector<WeightPatches>& weight_patches() const { return weights_; }

  // Copies with more patches (one WeightPatches per encoder) or another last layer
  // (CLIPSetLastLayer's stop_at_clip_layer); the base stays shared and untouched.
  ClipPatcher with_weight_patches(const std::vector<WeightPatches>& patches) const;
  ClipPatcher with_last_layer(int stop_at_clip_layer) const;
  // A copy whose prompts find their "embedding:NAME" files with `finder` (ComfyUI's embedding
  // directory, which the checkpoint loaders set).
  ClipPatcher with_embeddings(EmbeddingFinder finder) const;

  // The conditioner with every patch applied, computed once per patcher.
  std::shared_ptr<const TextConditioner> patched() const;

 private:
  struct Memo {
    std::mutex mutex;
    std::shared_ptr<const TextConditioner> conditioner;
  };
  ClipPatcher copy_with_fresh_memo() const;

  std::shared_ptr<const TextConditioner> base_;
  std::vector<WeightPatches> weights_;
  int stop_at_clip_layer_ = 0;
  EmbeddingFinder embedding_finder_;
  std::shared_ptr<Memo> memo_;
};

}  // namespace df::engine
