// Applied controls (ComfyUI's ControlNetApply chain): each link's residuals for a UNet call within
// its step window, scaled by its strength and summed with the links applied before it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <ATen/ATen.h>

#include "engine/control/controlnet.h"
#include "engine/noise_schedule.h"
#include "engine/text_conditioning.h"
#include "engine/unet.h"

namespace df::engine {

// The hint image for a latent of `width` x `height` pixels: [B, C, height, width] in [0, 1].
using HintAtSize = std::function<at::Tensor(int64_t width, int64_t height)>;

// One applied ControlNet: its hint, strength and step window (fractions of the schedule, ComfyUI's
// start_percent / end_percent), after the controls applied before it.
struct ControlLink {
  std::shared_ptr<const ControlNet> net;
  HintAtSize hint;
  double strength = 1.0;
  double start_percent = 0.0, end_percent = 1.0;
  std::shared_ptr<const ControlLink> previous;
};

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

// Whether `link` acts at `sigma`: its window [percent_to_sigma(start), percent_to_sigma(end)].
bool control_active(const ControlLink& link, const NoiseSchedule& schedule, double sigma);

// ComfyUI's broadcast_image_to: a hint batch of 1 stays; otherwise each conditioning's run of
// `batch / conditionings` latents takes the hint images in turn (repeating them as needed).
at::Tensor hint_for_batch(const at::Tensor& hint, int64_t batch, int64_t conditionings);

// The summed residuals of every link of the chain ending at `link` that is active at the call's
// sigma, each times its strength (empty when none is active).
UNetControl control_residuals(const ControlLink& link, const ControlCall& call,
                              const NoiseSchedule& schedule);

// ComfyUI's apply_empty_x_to_equal_area for controls: when no negative entry without an area has
// a control, the controls of the positive entries without an area that apply to the negative
// (ControlNetApply's) are given to the negative entries without an area in turn (with more
// controls than entries, an entry keeps the last one it is given, as in ComfyUI).
ConditioningList with_controls_for_negative(const ConditioningList& positive,
                                            ConditioningList negative);

}  // namespace df::engine
