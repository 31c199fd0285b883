// Euler, Heun and DPM-Solver-2 steps in VE space, their ancestral variants, LCM and DDPM.
#include <cmath>
#include <utility>

#include "engine/sampling/sampler_families.h"

namespace df::engine::sampling {

at::Tensor sample_euler(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const at::Tensor d = derivative(x, run.denoise(x, sigma), sigma);
    x = x + d * (run.sigma(i + 1) - sigma);
  });
  return x;
}

namespace {

// ComfyUI's sample_euler_ancestral_RF: interpolate towards the estimate down to the flow
// ancestral step's sigma_down, then rescale and renoise to the next sigma.
at::Tensor sample_euler_ancestral_flow(SamplerRun& run, at::Tensor x) {
  for_each_denoised_step(run, x, [&](double sigma, double next, const at::Tensor& denoised) {
    const FlowAncestralStep step = flow_ancestral_step(sigma, next);
    const double keep = step.down / sigma;
    x = x * keep + denoised * (1.0 - keep);
    x = x * step.rescale + run.noise(x, sigma, next) * step.renoise;
  });
  return x;
}

}  // namespace

at::Tensor sample_euler_ancestral(SamplerRun& run, at::Tensor x) {
  if (run.flow()) return sample_euler_ancestral_flow(run, std::move(x));
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor denoised = run.denoise(x, sigma);
    const auto [down, up] = ancestral_step(sigma, next);
    if (down == 0.0) {
      x = denoised;
    } else {
      x = x + derivative(x, denoised, sigma) * (down - sigma) + run.noise(x, sigma, next) * up;
    }
  });
  return x;
}

// Heun's method: an Euler predictor, then the mean of both slopes; a plain Euler step to 0.
at::Tensor sample_heun(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor d = derivative(x, run.denoise(x, sigma), sigma);
    const at::Tensor x_euler = x + d * (next - sigma);
    if (next == 0.0) {
      x = x_euler;
      return;
    }
    const at::Tensor d_next = derivative(x_euler, run.denoise(x_euler, next), next);
    x = x + (d + d_next) / 2 * (next - sigma);
  });
  return x;
}

// Heun++: the slopes at sigma and the next one or two sigmas weighted by those sigmas over
// (2 or 3) * sigmas[0]; Euler on the last step, Heun-like on the one before.
at::Tensor sample_heunpp2(SamplerRun& run, at::Tensor x) {
  const double last = run.sigma(run.steps());
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const double dt = next - sigma;
    const at::Tensor d = derivative(x, run.denoise(x, sigma), sigma);
    if (next == last) {
      x = x + d * dt;
      return;
    }
    const at::Tensor x_2 = x + d * dt;
    const at::Tensor d_2 = derivative(x_2, run.denoise(x_2, next), next);
    if (run.sigma(i + 2) == last) {
      const double w2 = next / (2 * run.sigma(0));
      x = x + (d * (1 - w2) + d_2 * w2) * dt;
      return;
    }
    const double after = run.sigma(i + 2);
    const at::Tensor x_3 = x_2 + d_2 * (after - next);
    const at::Tensor d_3 = derivative(x_3, run.denoise(x_3, after), after);
    const double w2 = next / (3 * run.sigma(0));
    const double w3 = after / (3 * run.sigma(0));
    x = x + (d * (1 - w2 - w3) + d_2 * w2 + d_3 * w3) * dt;
  });
  return x;
}

namespace {

// DPM-Solver-2: the slope at the log-midpoint of sigma and `target` carries x to `target`.
at::Tensor dpm_2_step(SamplerRun& run, const at::Tensor& x, const at::Tensor& d, double sigma,
                      double target) {
  const double mid = log_midpoint(sigma, target);
  const at::Tensor x_mid = x + d * (mid - sigma);
  const at::Tensor d_mid = derivative(x_mid, run.denoise(x_mid, mid), mid);
  return x + d_mid * (target - sigma);
}

}  // namespace

at::Tensor sample_dpm_2(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor d = derivative(x, run.denoise(x, sigma), sigma);
    x = next == 0.0 ? x + d * (next - sigma) : dpm_2_step(run, x, d, sigma, next);
  });
  return x;
}

// For flows ComfyUI's sample_dpm_2_ancestral_RF: the DPM-Solver-2 step to the flow ancestral
// step's sigma_down, then rescale and renoise to the next sigma.
at::Tensor sample_dpm_2_ancestral(SamplerRun& run, at::Tensor x) {
  const bool flow = run.flow();
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor d = derivative(x, run.denoise(x, sigma), sigma);
    const auto [down, up] = ancestral_step(sigma, next);
    const FlowAncestralStep flow_step = flow_ancestral_step(sigma, next);
    const double target = flow ? flow_step.down : down;
    if (target == 0.0) {
      x = x + d * (target - sigma);
    } else if (flow) {
      x = dpm_2_step(run, x, d, sigma, target) * flow_step.rescale +
          run.noise(x, sigma, next) * flow_step.renoise;
    } else {
      x = dpm_2_step(run, x, d, sigma, down) + run.noise(x, sigma, next) * up;
    }
  });
  return x;
}

// Latent consistency sampling: jump to the denoised estimate, then re-noise it to the next sigma
// with the model's noise scaling.
at::Tensor sample_lcm(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    x = run.denoise(x, sigma);
    if (next > 0.0) x = run.noise_scaling(next, run.noise(x, sigma, next), x);
  });
  return x;
}

// DDPM's ancestral step in VP form: the posterior mean of x_prev given the noise estimate, plus
// the posterior's spread times fresh noise; the result is carried back into VE space.
at::Tensor sample_ddpm(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor eps = derivative(x, run.denoise(x, sigma), sigma);
    const at::Tensor x_vp = x / std::sqrt(1.0 + sigma * sigma);
    const double alpha_cumprod = 1.0 / (sigma * sigma + 1.0);
    const double alpha_cumprod_next = 1.0 / (next * next + 1.0);
    const double alpha = alpha_cumprod / alpha_cumprod_next;
    at::Tensor mu = (x_vp - eps * ((1.0 - alpha) / std::sqrt(1.0 - alpha_cumprod))) *
                    std::sqrt(1.0 / alpha);
    if (next > 0.0) {
      const double spread =
          std::sqrt((1.0 - alpha) * (1.0 - alpha_cumprod_next) / (1.0 - alpha_cumprod));
      mu = mu + run.noise(x, sigma, next) * spread;
      mu = mu * std::sqrt(1.0 + next * next);
    }
    x = mu;
  });
  return x;
}

}  // namespace df::engine::sampling
