// ComfyUI's schedulers: the sigma sequence a sampler walks for a given number of steps.
#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/noise_schedule.h"

namespace df::engine {

// normal karras exponential sgm_uniform simple ddim_uniform beta
const std::vector<std::string>& scheduler_names();

// The descending sigmas of `scheduler` for `steps` steps, float32, ending in 0; usually
// [steps + 1] long (beta drops repeated timesteps; ddim_uniform can add one when 1000 % steps
// leaves room). Throws Error(kInvalidArgument) for an unknown scheduler or steps < 1.
at::Tensor compute_sigmas(const NoiseSchedule& schedule, const std::string& scheduler, int steps);

// The regularized incomplete beta function's inverse (the Beta(a, b) quantile) used by the beta
// scheduler; exposed for tests.
double beta_quantile(double p, double a, double b);

}  // namespace df::engine
