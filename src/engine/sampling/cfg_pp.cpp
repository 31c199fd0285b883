// CFG++ samplers (arXiv:2406.08070): they step along the unconditional denoised estimate and
// land on the guided one, so guidance is applied once per step instead of being extrapolated.
#include <cmath>
#include <utility>

#include "engine/sampling/sampler_families.h"

namespace df::engine::sampling {

// Euler (eta 0) or Euler ancestral (eta 1) CFG++: x = guided estimate + sigma_down * the slope
// towards the unconditional estimate, plus ancestral noise; the ancestral split is taken on the
// VE sigmas sigma / alpha and everything scaled by the signal scale alpha (1 unless a flow).
at::Tensor sample_euler_ancestral_cfg_pp(SamplerRun& run, at::Tensor x, double eta) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const Estimate estimate = run.estimate(x, sigma);
    if (next == 0.0) {
      x = estimate.denoised;
      return;
    }
    const double alpha = run.alpha(sigma);
    const double alpha_next = run.alpha(next);
    const at::Tensor d = derivative(x, estimate.uncond * alpha, sigma);
    const auto [down, up] = ancestral_step(sigma / alpha, next / alpha_next, eta);
    x = estimate.denoised * alpha_next + d * (down * alpha_next);
    if (eta > 0.0) x = x + run.noise(x, sigma, next) * (up * alpha_next);
  });
  return x;
}

// DPM-Solver++(2S) ancestral CFG++: the 2S step taken on the unconditional estimates (the
// midpoint call contributes only its unconditional estimate), then the step's guidance added.
at::Tensor sample_dpmpp_2s_ancestral_cfg_pp(SamplerRun& run, at::Tensor x) {
  if (run.flow()) return sample_dpmpp_2s_ancestral_flow(run, std::move(x), true);
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const Estimate estimate = run.estimate(x, sigma);
    const at::Tensor guidance = estimate.denoised - estimate.uncond;
    const auto [down, up] = ancestral_step(sigma, next);
    if (down == 0.0) {
      x = x + derivative(x, estimate.uncond, sigma) * (down - sigma);
    } else {
      const double h = std::log(sigma) - std::log(down);
      const double mid = log_midpoint(sigma, down);
      const at::Tensor x_mid = x * (mid / sigma) - estimate.uncond * std::expm1(-0.5 * h);
      const at::Tensor uncond_mid = run.estimate(x_mid, mid).uncond;
      x = x * (down / sigma) - uncond_mid * std::expm1(-h);
    }
    if (next > 0.0) x = x + run.noise(x, sigma, next) * up;
    x = x + guidance;
  });
  return x;
}

// DPM-Solver++(2M) CFG++: the multistep update built from the unconditional estimates, re-based
// on the guided estimate.
at::Tensor sample_dpmpp_2m_cfg_pp(SamplerRun& run, at::Tensor x) {
  at::Tensor old_uncond;
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const Estimate estimate = run.estimate(x, sigma);
    if (next == 0.0) {
      x = estimate.denoised;
    } else {
      const double h = std::log(sigma) - std::log(next);
      at::Tensor mix = estimate.uncond * -std::exp(-h);
      if (old_uncond.defined()) {
        const double h_last = std::log(run.sigma(i - 1)) - std::log(sigma);
        mix = mix - (estimate.denoised - old_uncond) * (std::expm1(-h) * h / (2.0 * h_last));
      }
      x = estimate.denoised + mix + x * std::exp(-h);
    }
    old_uncond = estimate.uncond;
  });
  return x;
}

}  // namespace df::engine::sampling
