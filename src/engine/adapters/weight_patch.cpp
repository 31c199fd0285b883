// Copy-on-write weight patches: patched tensors are new, everything else is shared.
#include "engine/adapters/weight_patch.h"

#include "core/error.h"
#include "engine/fp8_weights.h"

namespace df::engine {

void append_patches(WeightPatches& patches, const WeightPatches& more) {
  for (const auto& [key, list] : more) {
    auto& target = patches[key];
    target.insert(target.end(), list.begin(), list.end());
  }
}

Weights apply_patches(const Weights& base, const WeightPatches& patches) {
  if (patches.empty()) return base;
  TensorMap tensors;
  for (const auto& key : base.keys()) tensors.emplace(key, base.get(key));
  for (const auto& [key, list] : patches) {
    auto it = tensors.find(key);
    if (it == tensors.end()) {
      throw Error(ErrorCode::kInvalidArgument, "a weight patch names '" + key +
                                                   "', which the model does not have");
    }
    at::Tensor weight = real_weight(tensors, key);
    for (const auto& patch : list) {
      if (patch.strength_model != 1.0) weight = weight * patch.strength_model;
      at::Tensor delta = patch.adapter->delta(weight).to(weight.device(), at::kFloat);
      if (delta.sizes() != weight.sizes()) {
        if (delta.numel() != weight.numel()) {
          throw Error(ErrorCode::kInvalidArgument,
                      "a weight patch for '" + key + "' has shape " +
                          c10::str(delta.sizes()) + ", the weight " + c10::str(weight.sizes()));
        }
        delta = delta.reshape(weight.sizes());
      }
      weight = weight + delta * patch.strength;
    }
    replace_weight(tensors, key, weight);
  }
  Weights patched(std::move(tensors));
  return base.prefix().empty() ? patched : patched.sub(base.prefix());
}

at::Tensor DiffAdapter::delta(const at::Tensor& weight) const {
  return diff_.to(weight.device(), at::kFloat);
}

}  // namespace df::engine
