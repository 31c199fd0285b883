// What every sampler shares: one run's sigmas, denoiser calls, per-step noise and hooks, and the
// step helpers of k-diffusion (ODE derivative, ancestral split, log-midpoint).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/ATen.h>

#include "engine/samplers.h"

namespace df::engine::sampling {

// A generator for `device` (CPU or the device's own kind) seeded with `seed`.
at::Generator seeded_generator(const at::Device& device, uint64_t seed);

// Per-step noise: a standard normal tensor shaped like the state for the step sigma -> sigma_next.
using NoiseSampler = std::function<at::Tensor(double sigma, double sigma_next)>;

// ComfyUI's default noise sampler: one standard normal draw in x's dtype per use, from a generator
// on x's device seeded on first use with `seed` + 1 on CPU and `seed` itself on other devices.
NoiseSampler default_noise_sampler(const at::Tensor& x, uint64_t seed);

// ComfyUI's Brownian tree noise sampler over the run's sigmas (min positive .. max): the tree's
// increment between the two sigmas, scaled to unit variance. `on_device` puts the tree on x's
// device (the _gpu samplers), else it lives on the CPU and its draws are moved to x's device.
NoiseSampler brownian_noise_sampler(const at::Tensor& x, const std::vector<double>& sigmas,
                                    uint64_t seed, bool on_device);

// The denoised estimates of one model call.
struct Estimate {
  at::Tensor denoised;  // the guided result
  at::Tensor uncond;    // the unconditional estimate (= denoised when no guidance ran)
};

// One sampler run: the sigmas as host values, the denoiser, the noise and the hooks.
class SamplerRun {
 public:
  SamplerRun(const Denoiser& denoise, std::vector<double> sigmas, uint64_t noise_seed,
             const SamplerHooks& hooks);

  int steps() const { return static_cast<int>(sigmas_.size()) - 1; }
  double sigma(int i) const { return sigmas_[i]; }
  const std::vector<double>& sigmas() const { return sigmas_; }
  uint64_t seed() const { return noise_seed_; }

  // The model's denoised estimate of x at sigma.
  at::Tensor denoise(const at::Tensor& x, double sigma) { return estimate(x, sigma).denoised; }
  // The guided and the unconditional estimate (what CFG++ samplers step along).
  Estimate estimate(const at::Tensor& x, double sigma);

  // Per-step noise from the default noise sampler, or from the one set by use_noise_sampler.
  at::Tensor noise(const at::Tensor& x, double sigma, double sigma_next);
  void use_noise_sampler(NoiseSampler sampler) { noise_sampler_ = std::move(sampler); }

  // The model's sampling is a flow (ComfyUI's CONST): x = (1 - sigma) * x0 + sigma * noise.
  bool flow() const;
  // The half log-SNR log(alpha / sigma): -log(sigma), for flows log((1 - sigma) / sigma) computed
  // in float32 as ComfyUI does.
  double half_log_snr(double sigma) const;
  // Its inverse: e^-lambda, for flows 1 / (1 + e^lambda) in float32.
  double sigma_of_half_log_snr(double lambda) const;
  // The signal scale alpha = sigma * e^lambda: 1, for flows 1 - sigma.
  double alpha(double sigma) const;
  // ComfyUI's offset_first_sigma_for_snr: a flow run starting at sigma >= 1 (infinite half
  // log-SNR) starts at the schedule's percent_to_sigma(1e-4) instead.
  void offset_first_sigma_for_snr();
  // The model's noise scaling: x + sigma * noise, for flows (1 - sigma) * x + sigma * noise.
  at::Tensor noise_scaling(double sigma, const at::Tensor& noise, const at::Tensor& x) const;

  // Runs step(i) for every step, checking for cancellation before and reporting after each.
  void for_each_step(const std::function<void(int)>& step) { repeat_step(steps(), step); }
  // The same for samplers that take their own number of steps (dpm_fast).
  void repeat_step(int count, const std::function<void(int)>& step);
  // Runs step() until done() (dpm_adaptive), reporting each against max(steps(), steps so far).
  void repeat_until(const std::function<bool()>& done, const std::function<void()>& step);

 private:
  // Checks for cancellation, runs the step, reports it as `number` of `total`.
  void run_one_step(const std::function<void()>& step, int number, int total);

  const Denoiser& denoise_;
  std::vector<double> sigmas_;
  uint64_t noise_seed_;
  const SamplerHooks& hooks_;
  NoiseSampler noise_sampler_;
  at::Tensor last_denoised_;
};

// A sampler: runs `run` from x (noised to the first sigma) and returns the result.
using SamplerFn = std::function<at::Tensor(SamplerRun& run, at::Tensor x)>;

// The ODE derivative dx/dsigma given the denoised estimate.
at::Tensor derivative(const at::Tensor& x, const at::Tensor& denoised, double sigma);

// A step sigma_from -> sigma_to split into a deterministic step to `down` and fresh noise of
// scale `up` (k-diffusion's get_ancestral_step; eta 0 gives down = sigma_to, up = 0).
struct AncestralStep {
  double down;
  double up;
};
AncestralStep ancestral_step(double sigma_from, double sigma_to, double eta = 1.0);

// ComfyUI's rectified-flow ancestral step (its *_RF samplers): a deterministic step to
// down = sigma_to * (1 + (sigma_to / sigma_from - 1) * eta), then x is rescaled by
// (1 - sigma_to) / (1 - down) and gets fresh noise of scale `renoise`, landing on sigma_to.
struct FlowAncestralStep {
  double down;
  double rescale;
  double renoise;
};
FlowAncestralStep flow_ancestral_step(double sigma_from, double sigma_to, double eta = 1.0);

// The geometric mean of two sigmas: the midpoint in log sigma.
double log_midpoint(double a, double b);

// Rounds to float32, as ComfyUI's float32 sigma tensors hold them.
double as_float32(double value);

// Runs step(sigma, next, denoised) for each step; a step to sigma 0 sets x to the estimate.
template <typename Step>
void for_each_denoised_step(SamplerRun& run, at::Tensor& x, Step&& step) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor denoised = run.denoise(x, sigma);
    if (next == 0.0) {
      x = denoised;
      return;
    }
    step(sigma, next, denoised);
  });
}

}  // namespace df::engine::sampling
