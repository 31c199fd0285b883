// ComfyUI KSampler's starting point: seeded initial noise, the sigmas a run walks (denoise and
// KSamplerAdvanced rules) and the noised start latent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/noise_schedule.h"

namespace df::engine {

// ComfyUI's prepare_noise: a CPU generator seeded with `seed` (PyTorch's mt19937 keeps only the
// low 32 bits) draws float32 standard normal noise of `latent_shape`. With `batch_index`, one
// [1, C, H, W] draw is made for every index 0..max(batch_index) and the draws named by the list
// are returned in its order (repeats reuse one draw). Throws Error(kInvalidArgument) for an empty
// shape or a negative index.
at::Tensor comfy_initial_noise(const std::vector<int64_t>& latent_shape, uint64_t seed,
                               const std::vector<int>& batch_index = {});

// ComfyUI's start rule: latent + noise * sqrt(1 + sigma0^2) when sigma0 is the schedule's top
// (within a relative 1e-5) or above it, else latent + noise * sigma0. `latent` is already scaled
// into model space; the result is float32.
at::Tensor noise_latent(const at::Tensor& latent, const at::Tensor& noise, double sigma0,
                        double sigma_max);
// The start rule for `schedule`: noise_latent, or for flow schedules (ComfyUI's CONST)
// sigma0 * noise + (1 - sigma0) * latent.
at::Tensor noise_latent(const NoiseSchedule& schedule, const at::Tensor& latent,
                        const at::Tensor& noise, double sigma0);
// ComfyUI's inverse_noise_scaling of a sampled latent whose last sigma is `sigma_last`: the latent
// itself, or for flow schedules latent / (1 - sigma_last).
at::Tensor unscale_noise(const NoiseSchedule& schedule, const at::Tensor& latent, double sigma_last);

// KSampler's sigma selection: the scheduler's sigmas for `steps` (computed for steps + 1 with the
// penultimate dropped for the samplers that need it); for 0 < denoise <= 0.9999 the sigmas of
// int(steps / denoise) steps of which the last steps + 1 are kept; empty for denoise <= 0.
at::Tensor denoise_sigmas(const NoiseSchedule& schedule, const std::string& scheduler,
                          const std::string& sampler, int steps, double denoise);

// KSamplerAdvanced's sigma selection: the full sigmas cut after `end_at_step` (the last one set to
// 0 unless `return_with_leftover_noise`), then started at `start_at_step`. Empty when nothing is
// left to sample (the latent is returned unchanged then). Throws Error(kInvalidArgument) for a
// negative step.
at::Tensor advanced_sigmas(const NoiseSchedule& schedule, const std::string& scheduler,
                           const std::string& sampler, int steps, int start_at_step,
                           int end_at_step, bool return_with_leftover_noise);

}  // namespace df::engine
