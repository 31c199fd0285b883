// Multistep samplers that reuse earlier slopes or estimates: linear multistep (LMS), iPNDM with
// fixed and variable step coefficients, DEIS, RES multistep and gradient estimation.
#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "engine/sampling/sampler_families.h"

namespace df::engine::sampling {
namespace {

// The integral over [a, b] of the Lagrange basis polynomial that is 1 at nodes[j] and 0 at the
// other nodes (degree <= 3), by 4-point Gauss-Legendre quadrature, exact for such polynomials.
double lagrange_integral(const std::vector<double>& nodes, size_t j, double a, double b) {
  static const double kPoints[] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                                   0.8611363115940526};
  static const double kWeights[] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                                    0.3478548451374538};
  double sum = 0.0;
  for (int q = 0; q < 4; ++q) {
    const double tau = 0.5 * (b - a) * kPoints[q] + 0.5 * (a + b);
    double basis = 1.0;
    for (size_t k = 0; k < nodes.size(); ++k) {
      if (k != j) basis *= (tau - nodes[k]) / (nodes[j] - nodes[k]);
    }
    sum += kWeights[q] * basis;
  }
  return 0.5 * (b - a) * sum;
}

// Keeps the latest `capacity` tensors, newest last.
class History {
 public:
  explicit History(size_t capacity) : capacity_(capacity) {}
  void push(const at::Tensor& value) {
    items_.push_back(value);
    if (items_.size() > capacity_) items_.pop_front();
  }
  size_t size() const { return items_.size(); }
  // back(0) is the newest.
  const at::Tensor& back(size_t age) const { return items_[items_.size() - 1 - age]; }

 private:
  size_t capacity_;
  std::deque<at::Tensor> items_;
};

}  // namespace

// Linear multistep in sigma, order 4: the slopes of up to four steps weighted by the integrals
// of their Lagrange polynomials over the step; the step to 0 jumps to the estimate.
at::Tensor sample_lms(SamplerRun& run, at::Tensor x) {
  constexpr int kOrder = 4;
  std::vector<double> sigmas;
  for (double sigma : run.sigmas()) sigmas.push_back(as_float32(sigma));
  History slopes(kOrder);
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const at::Tensor denoised = run.denoise(x, sigma);
    slopes.push(derivative(x, denoised, sigma));
    if (run.sigma(i + 1) == 0.0) {
      x = denoised;
      return;
    }
    const int order = std::min(i + 1, kOrder);
    std::vector<double> nodes;
    for (int k = 0; k < order; ++k) nodes.push_back(sigmas[i - k]);
    for (int j = 0; j < order; ++j) {
      x = x + slopes.back(j) * lagrange_integral(nodes, j, sigmas[i], sigmas[i + 1]);
    }
  });
  return x;
}

// iPNDM: Adams-Bashforth steps of order up to 4 with the fixed-step coefficients.
at::Tensor sample_ipndm(SamplerRun& run, at::Tensor x) {
  History slopes(3);
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor denoised = run.denoise(x, sigma);
    const at::Tensor d = derivative(x, denoised, sigma);
    const size_t order = std::min<size_t>(4, i + 1);
    const double dt = next - sigma;
    if (next == 0.0) {
      x = denoised;
    } else if (order == 1) {
      x = x + d * dt;
    } else if (order == 2) {
      x = x + (d * 3 - slopes.back(0)) / 2 * dt;
    } else if (order == 3) {
      x = x + (d * 23 - slopes.back(0) * 16 + slopes.back(1) * 5) / 12 * dt;
    } else {
      x = x + (d * 55 - slopes.back(0) * 59 + slopes.back(1) * 37 - slopes.back(2) * 9) / 24 * dt;
    }
    slopes.push(d);
  });
  return x;
}

namespace {

// iPNDM-v's weights of the current slope and the 1-3 previous ones for unequal steps
// h_n (this step) and h_n_1.. (the earlier ones), from the variable-step Adams-Bashforth rule.
std::vector<double> ipndm_v_weights(int order, const std::vector<double>& sigmas, int i) {
  const double h_n = sigmas[i + 1] - sigmas[i];
  const double h_n_1 = sigmas[i] - sigmas[i - 1];
  if (order == 2) return {(2 + h_n / h_n_1) / 2, -(h_n / h_n_1) / 2};
  const double h_n_2 = sigmas[i - 1] - sigmas[i - 2];
  const double temp1 = (1 - h_n / (3 * (h_n + h_n_1)) * (h_n * (h_n + h_n_1)) /
                                (h_n_1 * (h_n_1 + h_n_2))) /
                       2;
  if (order == 3) {
    return {(2 + h_n / h_n_1) / 2 + temp1, -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp1,
            temp1 * h_n_1 / h_n_2};
  }
  const double h_n_3 = sigmas[i - 2] - sigmas[i - 3];
  const double temp2 = ((1 - h_n / (3 * (h_n + h_n_1))) / 2 +
                        (1 - h_n / (2 * (h_n + h_n_1))) * h_n / (6 * (h_n + h_n_1 + h_n_2))) *
                       (h_n * (h_n + h_n_1) * (h_n + h_n_1 + h_n_2)) /
                       (h_n_1 * (h_n_1 + h_n_2) * (h_n_1 + h_n_2 + h_n_3));
  const double ratio = h_n_1 * (h_n_1 + h_n_2) / (h_n_2 * (h_n_2 + h_n_3));
  return {(2 + h_n / h_n_1) / 2 + temp1 + temp2,
          -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp1 - (1 + h_n_1 / h_n_2 + ratio) * temp2,
          temp1 * h_n_1 / h_n_2 + (h_n_1 / h_n_2 + ratio * (1 + h_n_2 / h_n_3)) * temp2,
          -temp2 * ratio * h_n_1 / h_n_2};
}

}  // namespace

// iPNDM with variable step coefficients, order up to 4.
at::Tensor sample_ipndm_v(SamplerRun& run, at::Tensor x) {
  History slopes(3);
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor denoised = run.denoise(x, sigma);
    const at::Tensor d = derivative(x, denoised, sigma);
    const int order = std::min(4, i + 1);
    if (next == 0.0) {
      x = denoised;
    } else if (order == 1) {
      x = x + d * (next - sigma);
    } else {
      const std::vector<double> w = ipndm_v_weights(order, run.sigmas(), i);
      at::Tensor slope = d * w[0];
      for (int k = 1; k < order; ++k) slope = slope + slopes.back(k - 1) * w[k];
      x = x + slope * (next - sigma);
    }
    slopes.push(d);
  });
  return x;
}

namespace {

// DEIS's time: the VP SDE (linear beta from beta_0 to beta_1) whose sigma(t) matches EDM's
// sigma range [0.002, 80] at t in [1e-3, 1], as the gits/DEIS reference computes it in float32.
struct DeisTime {
  at::Tensor beta_0;
  at::Tensor beta_1;
  at::Tensor t_steps;  // the sigmas' times, float32
};

DeisTime deis_time(const std::vector<double>& sigmas) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  constexpr double kEpsilonS = 1e-3;
  const at::Tensor log_min = (at::scalar_tensor(0.002, f32).pow(2) + 1).log();
  const at::Tensor log_max = (at::scalar_tensor(80.0, f32).pow(2) + 1).log();
  const at::Tensor beta_d = (log_min / kEpsilonS - log_max) * 2 / (kEpsilonS - 1);
  const at::Tensor beta_min = log_max - beta_d * 0.5;
  const at::Tensor sigma = at::tensor(sigmas, at::kDouble).to(at::kFloat);
  const at::Tensor t = ((beta_min.pow(2) + beta_d * 2 * (sigma.pow(2) + 1).log()).sqrt() - beta_min) /
                       beta_d;
  return {beta_min, beta_d + beta_min, t};
}

// The DEIS (tAB) weights of the slopes at the last `order` times for the step i -> i + 1: the
// integrals of their Lagrange polynomials against the exponential integrator's kernel, by a
// 10000-point Riemann sum over the step, in float32 as the reference.
std::vector<double> deis_weights(const DeisTime& time, int i, int order) {
  constexpr int64_t kPoints = 10000;
  const at::Tensor t_cur = time.t_steps[i];
  const at::Tensor t_next = time.t_steps[i + 1];
  const at::Tensor taus =
      at::linspace(t_cur.item<double>(), t_next.item<double>(), kPoints, at::kFloat);
  const at::Tensor dtau = (t_next - t_cur) / kPoints;
  const at::Tensor slope = time.beta_1 - time.beta_0;
  const at::Tensor alpha = (taus.pow(2) * -0.5 * slope - taus * time.beta_0).exp();
  const at::Tensor d_log_alpha = -(taus * slope + time.beta_0);
  const at::Tensor integrand = d_log_alpha * -0.5 / (alpha * (1 - alpha)).sqrt();
  std::vector<double> weights;
  for (int j = 0; j < order; ++j) {
    at::Tensor poly = at::ones_like(taus);
    for (int k = 0; k < order; ++k) {
      if (k == j) continue;
      poly = poly * ((taus - time.t_steps[i - k]) / (time.t_steps[i - j] - time.t_steps[i - k]));
    }
    weights.push_back(((integrand * poly).sum() * dtau).item<double>());
  }
  return weights;
}

}  // namespace

// DEIS (tAB, order up to 3): Adams-Bashforth in DEIS's VP time with exponential-integrator
// weights; Euler on the first step and the step to 0.
at::Tensor sample_deis(SamplerRun& run, at::Tensor x) {
  constexpr int kMaxOrder = 3;
  const DeisTime time = deis_time(run.sigmas());
  History slopes(kMaxOrder - 1);
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor d = derivative(x, run.denoise(x, sigma), sigma);
    const int order = next <= 0.0 ? 1 : std::min(i + 1, kMaxOrder);
    if (order == 1) {
      x = x + d * (next - sigma);
    } else {
      const std::vector<double> w = deis_weights(time, i, order);
      x = x + d * w[0];
      for (int k = 1; k < order; ++k) x = x + slopes.back(k - 1) * w[k];
    }
    slopes.push(d);
  });
  return x;
}

namespace {

// phi_1 and phi_2 of the exponential integrator at -h.
double phi_1(double t) { return std::expm1(t) / t; }
double phi_2(double t) { return (phi_1(t) - 1.0) / t; }
double finite_or_zero(double value) { return std::isfinite(value) ? value : 0.0; }

}  // namespace

// RES multistep (arXiv:2308.02157): second order exponential multistep from the previous estimate;
// an Euler step first and to sigma 0. eta > 0 adds ancestral noise, cfg_pp steps along the
// unconditional estimate and adds the guidance back.
at::Tensor sample_res_multistep(SamplerRun& run, at::Tensor x, double eta, bool cfg_pp) {
  at::Tensor old_denoised;
  double old_down = 0.0;
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const Estimate estimate = run.estimate(x, sigma);
    const auto [down, up] = ancestral_step(sigma, next, eta);
    const at::Tensor& base = cfg_pp ? estimate.uncond : estimate.denoised;
    if (down == 0.0 || !old_denoised.defined()) {
      const at::Tensor d = derivative(x, base, sigma);
      x = cfg_pp ? estimate.denoised + d * down : x + d * (down - sigma);
    } else {
      const double h = std::log(sigma) - std::log(down);
      const double c2 = (std::log(old_down) - std::log(run.sigma(i - 1))) / h;
      const double b1 = finite_or_zero(phi_1(-h) - phi_2(-h) / c2);
      const double b2 = finite_or_zero(phi_2(-h) / c2);
      if (cfg_pp) x = x + (estimate.denoised - estimate.uncond);
      x = x * std::exp(-h) + (base * b1 + old_denoised * b2) * h;
    }
    if (next > 0.0 && up > 0.0) x = x + run.noise(x, sigma, next) * up;
    old_denoised = base;
    old_down = down;
  });
  return x;
}

// Gradient estimation (gamma 2): Euler steps plus (gamma - 1) times the change of the slope.
at::Tensor sample_gradient_estimation(SamplerRun& run, at::Tensor x, bool cfg_pp) {
  constexpr double kGamma = 2.0;
  at::Tensor old_d;
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const Estimate estimate = run.estimate(x, sigma);
    const at::Tensor d = derivative(x, cfg_pp ? estimate.uncond : estimate.denoised, sigma);
    const double dt = next - sigma;
    if (next == 0.0) {
      x = estimate.denoised;
    } else {
      x = cfg_pp ? estimate.denoised + d * next : x + d * dt;
      if (i >= 1) x = x + (d - old_d) * ((kGamma - 1) * dt);
    }
    old_d = d;
  });
  return x;
}

}  // namespace df::engine::sampling
