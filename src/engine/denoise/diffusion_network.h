// The interface of a family's denoising network (a DiT transformer): latents and text in, the
// network's raw prediction out, in the units its original implementation uses.
#pragma once

#include <memory>

#include <ATen/ATen.h>

#include "engine/weights.h"

namespace df::engine {

// The text-side inputs of one network call, batched like the latents.
struct NetworkInputs {
  at::Tensor context;       // [B, L, C] text token states
  at::Tensor context_mask;  // [B, L] bool, true for real tokens; undefined: every token is real
  at::Tensor pooled;        // [B, P] pooled text embedding; undefined where the family has none
  at::Tensor guidance;      // [B] distilled guidance scale (FLUX.1 dev); undefined: none
};

// A denoising network. Implementations take their weights at construction (checking every shape
// there) and compute in the dtype and on the device of those weights; inputs are moved to them and
// the output comes back as float32 on the input's device. The timestep's meaning and the output's
// (velocity, negated velocity, ...) are each family's, written in its header; the family's model
// sampling maps sigmas to it.
class DiffusionNetwork {
 public:
  virtual ~DiffusionNetwork() = default;
  // x: [B, C, H, W] latents, H and W multiples of the patch size; timestep: [B] float32.
  virtual at::Tensor forward(const at::Tensor& x, const at::Tensor& timestep,
                             const NetworkInputs& inputs) const = 0;
  // The weights the network computes with (the family's original tensor names).
  virtual const Weights& weights() const = 0;
  // The same network over other weights of the same names and shapes (a LoRA-patched copy that
  // shares every unpatched tensor); shapes are checked as at construction.
  virtual std::shared_ptr<const DiffusionNetwork> with_weights(Weights weights) const = 0;
};

}  // namespace df::engine
