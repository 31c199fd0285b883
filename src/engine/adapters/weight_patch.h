// Copy-on-write weight patches (LoRA, LyCORIS, merges): a job's changes to a cached model's
// weights, applied to a copy that shares every unpatched tensor and never touches the original.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/weights.h"

namespace df::engine {

// What a patch adds to one weight: delta(weight) has weight's shape (float32 is fine: the
// result is cast back to the weight's dtype).
class WeightAdapter {
 public:
  virtual ~WeightAdapter() = default;
  virtual at::Tensor delta(const at::Tensor& weight) const = 0;
};

// ComfyUI's patch semantics: weight = weight * strength_model + strength * delta(weight), patches
// of one key applied in the order they were added.
struct WeightPatch {
  std::shared_ptr<const WeightAdapter> adapter;
  double strength = 1.0;
  double strength_model = 1.0;
};

// Engine weight name (as the module's Weights holds it) -> its patches.
using WeightPatches = std::map<std::string, std::vector<WeightPatch>>;

// Appends `more` after `patches` (stacked LoRAs: the earlier loader's patches come first).
void append_patches(WeightPatches& patches, const WeightPatches& more);

// A copy of `base` (the same prefix view over a new set) where each patched key (a full name, as
// Weights::keys() lists them) holds its patched tensor, computed in float32 on the weight's device
// and cast back (fp8 storage dequantized with its scale and requantized, see fp8_weights.h);
// unpatched tensors are shared, not copied.
// Throws Error(kInvalidArgument) naming a key that `base` does not hold or a delta whose shape
// differs from the weight's.
Weights apply_patches(const Weights& base, const WeightPatches& patches);

// The simplest adapter: a fixed difference tensor (merges, "diff" patches).
class DiffAdapter : public WeightAdapter {
 public:
  explicit DiffAdapter(at::Tensor diff) : diff_(std::move(diff)) {}
  at::Tensor delta(const at::Tensor& weight) const override;
  const at::Tensor& diff() const { return diff_; }

 private:
  at::Tensor diff_;
};

}  // namespace df::engine
