// DPM-Solver++ samplers (2S ancestral, 2M, SDE, 2M/3M SDE), the exponential Heun (SEEDS-2 with
// r = 1) samplers and DPM-Solver-fast/-adaptive, in VE space where the VP signal scale alpha is 1
// and times are t = -log(sigma); the SDE and exponential Heun samplers and 2S ancestral also take
// ComfyUI's flow (CONST) forms, in the flow's half log-SNR with alpha = 1 - sigma.
#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/sampling/sampler_families.h"

namespace df::engine::sampling {
namespace {

// The log-midpoint of two sigmas as ComfyUI computes it from float32 sigmas in float32 (it is
// also where the Brownian noise is queried, so it must be the same float).
double float32_log_midpoint(double sigma, double next) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor lambda_s = at::scalar_tensor(sigma, f32).log().neg();
  const at::Tensor lambda_t = at::scalar_tensor(next, f32).log().neg();
  return (lambda_s + (lambda_t - lambda_s) * 0.5).neg().exp().item<double>();
}

// The first order part of a DPM-Solver++ SDE step (eta 1): x decays by e^-2h towards the estimate
// at the next sigma's signal scale alpha_next (h in half log-SNR).
at::Tensor sde_first_order(const at::Tensor& x, const at::Tensor& denoised, double sigma,
                           double next, double h, double alpha_next) {
  return x * (next / sigma * std::exp(-h)) + denoised * (-std::expm1(-2.0 * h) * alpha_next);
}

// The step's length in half log-SNR (log(sigma / next) unless the model is a flow).
double snr_step(const SamplerRun& run, double sigma, double next) {
  return run.half_log_snr(next) - run.half_log_snr(sigma);
}

// The SDE step's noise: Brownian noise of scale next * sqrt(1 - e^-2h).
at::Tensor sde_noise(SamplerRun& run, const at::Tensor& x, double sigma, double next, double h) {
  return run.noise(x, sigma, next) * (next * std::sqrt(-std::expm1(-2.0 * h)));
}

}  // namespace

// ComfyUI's sample_dpmpp_2s_ancestral_RF (and its CFG++ form, which steps along the
// unconditional estimates and adds the step's guidance scaled by 1 - sigma_next): a half step in
// flow half log-SNR to sigma_s, whose estimate carries x to the flow ancestral step's sigma_down,
// then rescale and renoise to the next sigma.
at::Tensor sample_dpmpp_2s_ancestral_flow(SamplerRun& run, at::Tensor x, bool cfg_pp) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const Estimate estimate = run.estimate(x, sigma);
    const at::Tensor& target = cfg_pp ? estimate.uncond : estimate.denoised;
    const FlowAncestralStep step = flow_ancestral_step(sigma, next);
    if (next == 0.0) {
      x = x + derivative(x, target, sigma) * (step.down - sigma);
    } else {
      const double lambda = run.half_log_snr(sigma);
      const double sigma_s =
          sigma == 1.0
              ? 0.9999
              : run.sigma_of_half_log_snr(lambda + 0.5 * (run.half_log_snr(step.down) - lambda));
      const double keep_s = sigma_s / sigma;
      const at::Tensor u = x * keep_s + target * (1.0 - keep_s);
      const Estimate at_s = run.estimate(u, sigma_s);
      const double keep_down = step.down / sigma;
      x = x * keep_down + (cfg_pp ? at_s.uncond : at_s.denoised) * (1.0 - keep_down);
      x = x * step.rescale + run.noise(x, sigma, next) * step.renoise;
    }
    if (cfg_pp) x = x + (estimate.denoised - estimate.uncond) * (1.0 - next);
  });
  return x;
}

// DPM-Solver++(2S) ancestral: a half step to the log-midpoint of sigma and sigma_down, the
// midpoint's estimate carries x to sigma_down, then noise of scale sigma_up.
at::Tensor sample_dpmpp_2s_ancestral(SamplerRun& run, at::Tensor x) {
  if (run.flow()) return sample_dpmpp_2s_ancestral_flow(run, std::move(x), false);
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor denoised = run.denoise(x, sigma);
    const auto [down, up] = ancestral_step(sigma, next);
    if (down == 0.0) {
      x = x + derivative(x, denoised, sigma) * (down - sigma);
    } else {
      const double h = std::log(sigma) - std::log(down);
      const double mid = log_midpoint(sigma, down);
      const at::Tensor x_mid = x * (mid / sigma) - denoised * std::expm1(-0.5 * h);
      const at::Tensor denoised_mid = run.denoise(x_mid, mid);
      x = x * (down / sigma) - denoised_mid * std::expm1(-h);
    }
    if (next > 0.0) x = x + run.noise(x, sigma, next) * up;
  });
  return x;
}

// DPM-Solver++(2M): multistep, second order from the previous denoised estimate; first order on
// the first step and the step to 0.
at::Tensor sample_dpmpp_2m(SamplerRun& run, at::Tensor x) {
  at::Tensor previous;
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor denoised = run.denoise(x, sigma);
    const double h = std::log(sigma) - std::log(next);
    at::Tensor target = denoised;
    if (previous.defined() && next != 0.0) {
      const double h_last = std::log(run.sigma(i - 1)) - std::log(sigma);
      const double half_inverse_ratio = h / (2.0 * h_last);
      target = denoised * (1.0 + half_inverse_ratio) - previous * half_inverse_ratio;
    }
    x = x * (next / sigma) - target * std::expm1(-h);
    previous = denoised;
  });
  return x;
}

// DPM-Solver++ (stochastic), eta 1, r = 1/2: an ancestral half step to the midpoint in half
// log-SNR, then an ancestral full step with the midpoint's estimate, both noised from the
// Brownian tree. The ancestral splits are taken on the VE sigmas sigma / alpha and scaled back by
// the signal scale alpha (1 unless the model is a flow).
at::Tensor sample_dpmpp_sde(SamplerRun& run, at::Tensor x, bool on_device) {
  run.use_noise_sampler(brownian_noise_sampler(x, run.sigmas(), run.seed(), on_device));
  run.offset_first_sigma_for_snr();
  // An ancestral step from sigma to `to`, starting from x and moving towards `estimate`.
  auto ancestral_towards = [&](const at::Tensor& x_from, const at::Tensor& estimate, double sigma,
                               double to) {
    const double alpha = run.alpha(sigma);
    const double alpha_to = run.alpha(to);
    const auto [down, up] = ancestral_step(sigma / alpha, to / alpha_to);
    const double keep = down / (sigma / alpha);
    return x_from * (alpha_to / alpha * keep) + estimate * (alpha_to * (1.0 - keep)) +
           run.noise(x_from, sigma, to) * (alpha_to * up);
  };
  for_each_denoised_step(run, x, [&](double sigma, double next, const at::Tensor& denoised) {
    const double mid =
        run.flow() ? run.sigma_of_half_log_snr(run.half_log_snr(sigma) +
                                               0.5 * snr_step(run, sigma, next))
                   : float32_log_midpoint(sigma, next);
    const at::Tensor x_mid = ancestral_towards(x, denoised, sigma, mid);
    const at::Tensor denoised_mid = run.denoise(x_mid, mid);
    x = ancestral_towards(x, denoised_mid, sigma, next);
  });
  return x;
}

// DPM-Solver++(2M) SDE, eta 1: the midpoint or Heun correction from the previous estimate.
at::Tensor sample_dpmpp_2m_sde(SamplerRun& run, at::Tensor x, bool on_device,
                               SecondOrder solver) {
  run.use_noise_sampler(brownian_noise_sampler(x, run.sigmas(), run.seed(), on_device));
  run.offset_first_sigma_for_snr();
  at::Tensor previous;
  double h_last = 0.0;
  for_each_denoised_step(run, x, [&](double sigma, double next, const at::Tensor& denoised) {
    const double h = snr_step(run, sigma, next);
    const double alpha_next = run.alpha(next);
    x = sde_first_order(x, denoised, sigma, next, h, alpha_next);
    if (previous.defined()) {
      const double inverse_ratio = h / h_last;
      const double weight = -std::expm1(-2.0 * h);
      const double scale = solver == SecondOrder::kMidpoint ? 0.5 * weight
                                                            : weight / (-2.0 * h) + 1.0;
      x = x + (denoised - previous) * (alpha_next * scale * inverse_ratio);
    }
    x = x + sde_noise(run, x, sigma, next, h);
    previous = denoised;
    h_last = h;
  });
  return x;
}

// DPM-Solver++(3M) SDE, eta 1: second and third order corrections from the last two estimates.
at::Tensor sample_dpmpp_3m_sde(SamplerRun& run, at::Tensor x, bool on_device) {
  run.use_noise_sampler(brownian_noise_sampler(x, run.sigmas(), run.seed(), on_device));
  run.offset_first_sigma_for_snr();
  at::Tensor denoised_1;
  at::Tensor denoised_2;
  double h_1 = 0.0;
  double h_2 = 0.0;
  for_each_denoised_step(run, x, [&](double sigma, double next, const at::Tensor& denoised) {
    const double h = snr_step(run, sigma, next);
    const double h_eta = 2.0 * h;
    const double alpha_next = run.alpha(next);
    x = sde_first_order(x, denoised, sigma, next, h, alpha_next);
    const double phi_2 = std::expm1(-h_eta) / h_eta + 1.0;
    if (denoised_2.defined()) {
      const double r0 = h_1 / h;
      const double r1 = h_2 / h;
      const at::Tensor d1_0 = (denoised - denoised_1) / r0;
      const at::Tensor d1_1 = (denoised_1 - denoised_2) / r1;
      const at::Tensor d1 = d1_0 + (d1_0 - d1_1) * (r0 / (r0 + r1));
      const at::Tensor d2 = (d1_0 - d1_1) / (r0 + r1);
      const double phi_3 = phi_2 / h_eta - 0.5;
      x = x + (d1 * phi_2 - d2 * phi_3) * alpha_next;
    } else if (denoised_1.defined()) {
      x = x + (denoised - denoised_1) / (h_1 / h) * (phi_2 * alpha_next);
    }
    x = x + sde_noise(run, x, sigma, next, h);
    denoised_2 = denoised_1;
    denoised_1 = denoised;
    h_2 = h_1;
    h_1 = h;
  });
  return x;
}

// Exponential Heun in data prediction and log-SNR time (SEEDS-2 with r = 1, phi_2 weights): a
// first order exponential step to sigma_next, then the step redone with the weights of both
// estimates. eta 1 makes it stochastic: noise scaled by sqrt(1 - e^-2h) enters the predictor and
// the final state (ComfyUI also draws a second, zero-weighted noise each step, which advances the
// generator and is drawn here too).
at::Tensor sample_exp_heun_2_x0(SamplerRun& run, at::Tensor x, double eta) {
  run.offset_first_sigma_for_snr();
  for_each_denoised_step(run, x, [&](double sigma, double next, const at::Tensor& denoised) {
    const double h = snr_step(run, sigma, next);
    const double h_eta = h * (eta + 1.0);
    const double decay = next / sigma * std::exp(-h * eta);
    const double alpha_next = run.alpha(next);
    at::Tensor x_2 = x * decay - denoised * (std::expm1(-h_eta) * alpha_next);
    at::Tensor sde_noise;
    if (eta > 0.0) {
      sde_noise = run.noise(x, sigma, next) * std::sqrt(-std::expm1(-2.0 * h * eta));
      x_2 = x_2 + sde_noise * next;
    }
    const at::Tensor denoised_2 = run.denoise(x_2, next);
    const double b2 = (std::expm1(-h_eta) + h_eta) / -h_eta;
    const double b1 = std::expm1(-h_eta) - b2;
    x = x * decay - (denoised * b1 + denoised_2 * b2) * alpha_next;
    if (eta > 0.0) {
      run.noise(x, next, next);
      x = x + sde_noise * next;
    }
  });
  return x;
}

namespace {

// DPM-Solver (noise prediction) steps of order 1-3 from t to t_next, in t = -log(sigma). Within
// one step (start_step) the noise estimates at t and at t + r1 h are computed once, so a second
// and a third order step from the same t with r1 = 1/3 share them (DPM-Solver-12/23's pairs).
class DpmSolver {
 public:
  explicit DpmSolver(SamplerRun& run) : run_(run) {}

  void start_step() { cache_ = {}; }

  at::Tensor first_order(const at::Tensor& x, double t, double t_next) {
    return x - eps(0, x, t) * (sigma(t_next) * std::expm1(t_next - t));
  }

  at::Tensor second_order(const at::Tensor& x, double t, double t_next, double r1) {
    const double h = t_next - t;
    const at::Tensor e = eps(0, x, t);
    const double s1 = t + r1 * h;
    const at::Tensor u1 = x - e * (sigma(s1) * std::expm1(r1 * h));
    return first_order(x, t, t_next) -
           (eps(1, u1, s1) - e) * (sigma(t_next) / (2 * r1) * std::expm1(h));
  }

  at::Tensor third_order(const at::Tensor& x, double t, double t_next) {
    const double h = t_next - t;
    const double r1 = 1.0 / 3.0;
    const double r2 = 2.0 / 3.0;
    const double s1 = t + r1 * h;
    const double s2 = t + r2 * h;
    const at::Tensor e = eps(0, x, t);
    const at::Tensor u1 = x - e * (sigma(s1) * std::expm1(r1 * h));
    const at::Tensor e_1 = eps(1, u1, s1);
    const at::Tensor u2 = x - e * (sigma(s2) * std::expm1(r2 * h)) -
                          (e_1 - e) * (sigma(s2) * (r2 / r1) *
                                       (std::expm1(r2 * h) / (r2 * h) - 1.0));
    const at::Tensor e_2 = eps(2, u2, s2);
    return first_order(x, t, t_next) -
           (e_2 - e) * (sigma(t_next) / r2 * (std::expm1(h) / h - 1.0));
  }

  at::Tensor step(int order, const at::Tensor& x, double t, double t_next) {
    if (order == 1) return first_order(x, t, t_next);
    if (order == 2) return second_order(x, t, t_next, 0.5);
    return third_order(x, t, t_next);
  }

 private:
  static double sigma(double t) { return std::exp(-t); }
  // The noise estimate at the step's point `slot` (0: t, 1: t + r1 h, 2: t + r2 h).
  at::Tensor eps(int slot, const at::Tensor& x, double t) {
    if (!cache_[slot].defined()) cache_[slot] = (x - run_.denoise(x, sigma(t))) / sigma(t);
    return cache_[slot];
  }

  SamplerRun& run_;
  std::array<at::Tensor, 3> cache_;
};

}  // namespace

// DPM-Solver-fast: steps-many model calls spread over floor(steps / 3) + 1 equal steps in t
// (float32, as ComfyUI's linspace) from sigmas[0] to the smallest nonzero sigma, third order
// steps with the remainder taken by the last ones.
at::Tensor sample_dpm_fast(SamplerRun& run, at::Tensor x) {
  const int nfe = run.steps();
  const double sigma_max = run.sigma(0);
  const double sigma_min = run.sigma(nfe) == 0.0 ? run.sigma(nfe - 1) : run.sigma(nfe);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const int m = nfe / 3 + 1;
  const double t_start = at::scalar_tensor(sigma_max, f32).log().neg().item<double>();
  const double t_end = at::scalar_tensor(sigma_min, f32).log().neg().item<double>();
  const at::Tensor ts = at::linspace(t_start, t_end, m + 1, f32).to(at::kDouble);
  std::vector<int> orders;
  if (nfe % 3 == 0) {
    orders.assign(m - 2, 3);
    orders.insert(orders.end(), {2, 1});
  } else {
    orders.assign(m - 1, 3);
    orders.push_back(nfe % 3);
  }
  DpmSolver solver(run);
  run.repeat_step(static_cast<int>(orders.size()), [&](int i) {
    solver.start_step();
    x = solver.step(orders[i], x, ts[i].item<double>(), ts[i + 1].item<double>());
  });
  return x;
}

namespace {

// The PID step size controller of DPM-Solver-23 with ComfyUI's settings (integral only: the step
// scales with the inverse error to the power 1/3, limited by 1 + atan(f - 1)).
class StepSizeController {
 public:
  double h() const { return h_; }

  // Adapts h to the error of the step just tried; true when the step is accepted.
  bool propose(double error) {
    const double inverse_error = 1.0 / (error + 1e-8);
    if (errors_.empty()) errors_.assign(3, inverse_error);
    errors_[0] = inverse_error;
    const double factor = 1.0 + std::atan(std::pow(errors_[0], 1.0 / 3.0) - 1.0);
    const bool accept = factor >= 0.81;
    if (accept) {
      errors_[2] = errors_[1];
      errors_[1] = errors_[0];
    }
    h_ *= factor;
    return accept;
  }

 private:
  double h_ = 0.05;
  std::vector<double> errors_;
};

}  // namespace

// DPM-Solver-23 with adaptive steps (rtol 0.05, atol 0.0078) in float32 t from sigmas[0] to the
// smallest nonzero sigma: each step's second and third order results estimate its error. Steps
// are reported against the sigmas' count, which the adaptive steps can exceed.
at::Tensor sample_dpm_adaptive(SamplerRun& run, at::Tensor x) {
  const int n = run.steps();
  const double sigma_min = run.sigma(n) == 0.0 ? run.sigma(n - 1) : run.sigma(n);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor t_end = at::scalar_tensor(sigma_min, f32).log().neg();
  const double limit = (t_end - 1e-5).item<double>();
  at::Tensor s = at::scalar_tensor(run.sigma(0), f32).log().neg();
  const at::Tensor atol = at::scalar_tensor(0.0078, f32);
  const at::Tensor rtol = at::scalar_tensor(0.05, f32);
  const double root_numel = std::sqrt(static_cast<double>(x.numel()));
  DpmSolver solver(run);
  StepSizeController controller;
  at::Tensor x_prev = x;
  run.repeat_until([&] { return s.item<double>() >= limit; }, [&] {
    const at::Tensor t = at::minimum(t_end, s + controller.h());
    solver.start_step();
    const at::Tensor x_low = solver.second_order(x, s.item<double>(), t.item<double>(), 1.0 / 3.0);
    const at::Tensor x_high = solver.third_order(x, s.item<double>(), t.item<double>());
    const at::Tensor delta = at::maximum(atol, rtol * at::maximum(x_low.abs(), x_prev.abs()));
    const double error =
        (at::linalg_norm((x_low - x_high) / delta) / root_numel).item<double>();
    if (controller.propose(error)) {
      x_prev = x_low;
      x = x_high;
      s = t;
    }
  });
  return x;
}

}  // namespace df::engine::sampling
