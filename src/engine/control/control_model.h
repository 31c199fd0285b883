// What a control model (a ControlNet or a T2I adapter) sees of one UNet call, and the interface
// the control chain drives them through.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include <ATen/ATen.h>

#include "engine/unet.h"

namespace df::engine {

// The hint image for a latent of `width` x `height` pixels: [B, C, height, width] in [0, 1].
using HintAtSize = std::function<at::Tensor(int64_t width, int64_t height)>;

// What the controls see of one UNet call: the UNet's inputs, the sigma being denoised and how many
// conditionings share the call (the batch holds `conditionings` runs of the latent batch).
struct ControlCall {
  at::Tensor sample;  // c_in-scaled, as the UNet gets it
  at::Tensor timesteps;
  at::Tensor context;
  std::optional<UNetAddedConditioning> added;
  double sigma = 0;
  int64_t conditionings = 1;
};

// ComfyUI's broadcast_image_to: a hint batch of 1 stays; otherwise each conditioning's run of
// `batch / conditionings` latents takes the hint images in turn (repeating them as needed).
at::Tensor hint_for_batch(const at::Tensor& hint, int64_t batch, int64_t conditionings);

// A model that turns a hint image into residuals for the UNet (ComfyUI's CONTROL_NET).
class ControlModel {
 public:
  virtual ~ControlModel() = default;
  // The unscaled residuals for one UNet call, from the hint `hint_at` gives.
  virtual UNetControl control(const ControlCall& call, const HintAtSize& hint_at) const = 0;
};

}  // namespace df::engine
