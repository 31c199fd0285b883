// Control residuals of a ControlNet chain for one UNet call, and ControlNetApply's negative copies.
#include "engine/control/control_chain.h"

#include <vector>

#include "core/error.h"

namespace df::engine {
namespace {

// ComfyUI's control_merge: `later` (already scaled) plus `earlier` where both have an entry.
void add_residuals(UNetControl& later, const UNetControl& earlier) {
  const auto add_list = [](std::vector<at::Tensor>& to, const std::vector<at::Tensor>& from) {
    if (to.size() < from.size()) to.resize(from.size());
    for (size_t i = 0; i < from.size(); ++i) {
      if (!from[i].defined()) continue;
      to[i] = to[i].defined() ? to[i] + from[i] : from[i];
    }
  };
  add_list(later.input, earlier.input);
  add_list(later.output, earlier.output);
  if (earlier.middle.defined()) {
    later.middle = later.middle.defined() ? later.middle + earlier.middle : earlier.middle;
  }
}

UNetControl scaled(UNetControl control, double strength) {
  for (at::Tensor& x : control.input) {
    if (x.defined()) x = x * strength;
  }
  for (at::Tensor& x : control.output) {
    if (x.defined()) x = x * strength;
  }
  if (control.middle.defined()) control.middle = control.middle * strength;
  return control;
}

UNetControl link_residuals(const ControlLink& link, const ControlCall& call) {
  return scaled(link.net->control(call, link.hint), link.strength);
}

}  // namespace

bool control_active(const ControlLink& link, const NoiseSchedule& schedule, double sigma) {
  return !(sigma > schedule.percent_to_sigma(link.start_percent) ||
           sigma < schedule.percent_to_sigma(link.end_percent));
}

at::Tensor hint_for_batch(const at::Tensor& hint, int64_t batch, int64_t conditionings) {
  if (hint.size(0) == 1 || hint.size(0) == batch) return hint;
  const int64_t per_conditioning = batch / conditionings;
  at::Tensor run = hint.narrow(0, 0, std::min(per_conditioning, hint.size(0)));
  if (run.size(0) < per_conditioning) {
    const int64_t whole = per_conditioning / run.size(0);
    run = at::cat({run.repeat({whole, 1, 1, 1}),
                   run.narrow(0, 0, per_conditioning % run.size(0))});
  }
  return conditionings == 1 ? run : run.repeat({conditionings, 1, 1, 1});
}

UNetControl control_residuals(const ControlLink& link, const ControlCall& call,
                              const NoiseSchedule& schedule) {
  UNetControl earlier;
  if (link.previous) earlier = control_residuals(*link.previous, call, schedule);
  if (!control_active(link, schedule, call.sigma)) return earlier;
  UNetControl residuals = link_residuals(link, call);
  add_residuals(residuals, earlier);
  return residuals;
}

ConditioningList with_controls_for_negative(const ConditioningList& positive,
                                            ConditioningList negative) {
  std::vector<std::shared_ptr<const ControlLink>> controls;
  for (const Conditioning& entry : positive) {
    if (!entry.area && entry.control && entry.control_applies_to_negative) {
      controls.push_back(entry.control);
    }
  }
  std::vector<size_t> plain;  // negative entries without an area or a control
  for (size_t i = 0; i < negative.size(); ++i) {
    if (negative[i].area) continue;
    if (negative[i].control) return negative;
    plain.push_back(i);
  }
  if (plain.empty()) return negative;
  for (size_t k = 0; k < controls.size(); ++k) negative[plain[k % plain.size()]].control = controls[k];
  return negative;
}

}  // namespace df::engine
