// ComfyUI's schedulers: the sigma sequence a sampler walks for a given number of steps.
#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/noise_schedule.h"

namespace df::engine {

// ComfyUI's KSampler.SCHEDULERS, in its order: simple sgm_uniform karras exponential
// ddim_uniform beta normal linear_quadratic kl_optimal.
const std::vector<std::string>& scheduler_names();

// The descending sigmas of `scheduler` for `steps` steps, float32, ending in 0; usually
// [steps + 1] long (beta drops repeated timesteps; ddim_uniform can add one when 1000 % steps
// leaves room). karras, exponential and kl_optimal span the schedule's [sigma_min, sigma_max],
// linear_quadratic scales its 0..1 ramp by sigma_max. Throws Error(kInvalidArgument) for an
// unknown scheduler or steps < 1.
at::Tensor compute_sigmas(const NoiseSchedule& schedule, const std::string& scheduler, int steps);

// The schedules the custom-sampling nodes build from their own inputs. Each returns float32
// sigmas [steps + 1] ending in 0, computed as ComfyUI (k-diffusion) does in float32, and throws
// Error(kInvalidArgument) for steps < 1 or sigma_min > sigma_max (or a non-positive sigma_min
// where a logarithm or power of it is taken).
//
// KarrasScheduler: uniform in sigma^(1/rho) from sigma_max down to sigma_min (rho 7 by default).
at::Tensor karras_sigmas(int steps, double sigma_min, double sigma_max, double rho = 7.0);
// ExponentialScheduler: uniform in log sigma.
at::Tensor exponential_sigmas(int steps, double sigma_min, double sigma_max);
// PolyexponentialScheduler: log sigma = log sigma_min + ramp^rho (log sigma_max - log sigma_min)
// with the ramp running 1 -> 0 (rho 1 is exponential).
at::Tensor polyexponential_sigmas(int steps, double sigma_min, double sigma_max, double rho = 1.0);
// kl_optimal (arXiv:2404.14507 / AUTOMATIC1111 #15608): tan of a linear ramp from atan(sigma_max)
// to atan(sigma_min). With one step ComfyUI divides 0 by 0 and yields NaN; this gives
// [sigma_max, 0] instead.
at::Tensor kl_optimal_sigmas(int steps, double sigma_min, double sigma_max);
// linear_quadratic (Mochi): a linear ramp of the first steps / 2 steps up to threshold_noise, a
// quadratic one for the rest, 1 - ramp scaled by sigma_max. With one step [sigma_max, 0].
at::Tensor linear_quadratic_sigmas(int steps, double sigma_max, double threshold_noise = 0.025);

// SDTurboScheduler: the sigmas of timesteps 999, 899, ..., 99 from index 10 - int(10 * denoise),
// `steps` of them (fewer when the list runs out), then 0. Throws Error(kInvalidArgument) for
// steps < 1 or denoise outside [0, 1].
at::Tensor sd_turbo_sigmas(const NoiseSchedule& schedule, int steps, double denoise);

// BasicScheduler: the scheduler's sigmas for `steps`, or for denoise < 1 the last steps + 1 of the
// sigmas for int(steps / denoise) steps; empty for denoise <= 0. (KSampler itself uses 0.9999 as
// its threshold and drops a penultimate sigma for some samplers: see noise.h denoise_sigmas.)
at::Tensor basic_scheduler_sigmas(const NoiseSchedule& schedule, const std::string& scheduler,
                                  int steps, double denoise);

// The regularized incomplete beta function's inverse (the Beta(a, b) quantile) used by the beta
// scheduler; exposed for tests.
double beta_quantile(double p, double a, double b);

}  // namespace df::engine
