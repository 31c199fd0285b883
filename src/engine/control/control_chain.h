// Applied controls (ComfyUI's ControlNetApply chain): each link's residuals for a UNet call within
// its step window, scaled by its strength and summed with the links applied before it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include <ATen/ATen.h>

#include "engine/control/control_model.h"
#include "engine/noise_schedule.h"
#include "engine/text_conditioning.h"
#include "engine/unet.h"

namespace df::engine {

// One applied control model (a ControlNet or a T2I adapter): its hint, strength and step window
// (fractions of the schedule, ComfyUI's start_percent / end_percent), after the controls applied
// before it.
struct ControlLink {
  std::shared_ptr<const ControlModel> net;
  HintAtSize hint;
  double strength = 1.0;
  double start_percent = 0.0, end_percent = 1.0;
  std::shared_ptr<const ControlLink> previous;
};

// Whether `link` acts at `sigma`: its window [percent_to_sigma(start), percent_to_sigma(end)].
bool control_active(const ControlLink& link, const NoiseSchedule& schedule, double sigma);

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
