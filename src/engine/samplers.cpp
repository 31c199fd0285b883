// The k-diffusion samplers ComfyUI offers for SD models, stepping in VE space with float64 scalars.
#include "engine/samplers.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <utility>

#include "core/error.h"

namespace df::engine {
namespace {

// One sampler run: the sigmas as host values, the denoiser, the sampler's own noise and the hooks.
class SamplerRun {
 public:
  SamplerRun(const Denoiser& denoise, std::vector<double> sigmas, uint64_t noise_seed,
             const SamplerHooks& hooks)
      : denoise_(denoise), sigmas_(std::move(sigmas)), noise_seed_(noise_seed), hooks_(hooks) {}

  int steps() const { return static_cast<int>(sigmas_.size()) - 1; }
  double sigma(int i) const { return sigmas_[i]; }
  at::Tensor denoise(const at::Tensor& x, double sigma) {
    last_denoised_ = denoise_(x, sigma);
    return last_denoised_;
  }

  // A standard normal tensor shaped like x, drawn in float32 on CPU from a generator seeded with
  // noise_seed + 1 on first use (ComfyUI's default_noise_sampler for CPU tensors).
  at::Tensor noise_like(const at::Tensor& x) {
    if (!generator_) generator_ = at::make_generator<at::CPUGeneratorImpl>(noise_seed_ + 1);
    return at::randn(x.sizes(), *generator_, at::TensorOptions().dtype(at::kFloat))
        .to(x.device(), x.scalar_type());
  }

  // Runs step(i) for every step, checking for cancellation before and reporting after each.
  template <typename Step>
  void for_each_step(Step&& step) {
    for (int i = 0; i < steps(); ++i) {
      if (hooks_.should_cancel && hooks_.should_cancel()) {
        throw Error(ErrorCode::kCanceled, "sampling was canceled");
      }
      step(i);
      if (hooks_.on_step) hooks_.on_step(i + 1, steps());
      if (hooks_.on_denoised && last_denoised_.defined()) hooks_.on_denoised(last_denoised_);
    }
  }

 private:
  const Denoiser& denoise_;
  std::vector<double> sigmas_;
  uint64_t noise_seed_;
  const SamplerHooks& hooks_;
  std::optional<at::Generator> generator_;
  at::Tensor last_denoised_;
};

using SamplerFn = std::function<at::Tensor(SamplerRun&, at::Tensor)>;

// The ODE derivative dx/dsigma given the denoised estimate.
at::Tensor derivative(const at::Tensor& x, const at::Tensor& denoised, double sigma) {
  return (x - denoised) / sigma;
}

// Splits a step sigma_from -> sigma_to into a deterministic step down to sigma_down and fresh
// noise of scale sigma_up (eta = 1).
struct AncestralStep {
  double sigma_down;
  double sigma_up;
};

AncestralStep ancestral_step(double sigma_from, double sigma_to) {
  const double up = std::min(
      sigma_to,
      std::sqrt(sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) /
                (sigma_from * sigma_from)));
  return {std::sqrt(sigma_to * sigma_to - up * up), up};
}

// The geometric mean of two sigmas: the midpoint in log sigma.
double log_midpoint(double a, double b) { return std::exp(0.5 * (std::log(a) + std::log(b))); }

// Runs the steps of `run` on `x`: step(sigma, next, denoised) with the denoised estimate at
// sigma, except that a step to sigma 0 just sets x to that estimate.
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

at::Tensor sample_euler(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const at::Tensor d = derivative(x, run.denoise(x, sigma), sigma);
    x = x + d * (run.sigma(i + 1) - sigma);
  });
  return x;
}

at::Tensor sample_euler_ancestral(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const at::Tensor denoised = run.denoise(x, sigma);
    const auto [down, up] = ancestral_step(sigma, run.sigma(i + 1));
    if (down == 0.0) {
      x = denoised;
    } else {
      x = x + derivative(x, denoised, sigma) * (down - sigma) + run.noise_like(x) * up;
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

// DPM-Solver-2: the slope at the log-midpoint of sigma and `target` carries x to `target`.
at::Tensor dpm_2_step(SamplerRun& run, const at::Tensor& x, const at::Tensor& d, double sigma,
                      double target) {
  const double mid = log_midpoint(sigma, target);
  const at::Tensor x_mid = x + d * (mid - sigma);
  const at::Tensor d_mid = derivative(x_mid, run.denoise(x_mid, mid), mid);
  return x + d_mid * (target - sigma);
}

at::Tensor sample_dpm_2(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const double next = run.sigma(i + 1);
    const at::Tensor d = derivative(x, run.denoise(x, sigma), sigma);
    x = next == 0.0 ? x + d * (next - sigma) : dpm_2_step(run, x, d, sigma, next);
  });
  return x;
}

at::Tensor sample_dpm_2_ancestral(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double sigma = run.sigma(i);
    const at::Tensor d = derivative(x, run.denoise(x, sigma), sigma);
    const auto [down, up] = ancestral_step(sigma, run.sigma(i + 1));
    if (down == 0.0) {
      x = x + d * (down - sigma);
    } else {
      x = dpm_2_step(run, x, d, sigma, down) + run.noise_like(x) * up;
    }
  });
  return x;
}

// DPM-Solver++(2M): multistep, second order from the previous denoised estimate; first order on
// the first step and the step to 0. Time is t = -log(sigma).
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

// DPM-Solver++(2M) SDE, eta = 1, midpoint variant. The VP alpha factors of the reference are 1
// for the VE models handled here and are left out. ComfyUI draws this sampler's noise from a
// torchsde Brownian tree; here the increments are seeded Gaussian draws from the sampler's
// generator instead (disjoint steps have independent increments, so the noise has the same
// distribution, but not ComfyUI's values).
at::Tensor sample_dpmpp_2m_sde(SamplerRun& run, at::Tensor x) {
  at::Tensor previous;
  double h_last = 0.0;
  for_each_denoised_step(run, x, [&](double sigma, double next, const at::Tensor& denoised) {
    const double h = std::log(sigma) - std::log(next);
    const double denoised_weight = -std::expm1(-2.0 * h);
    x = x * (next / sigma * std::exp(-h)) + denoised * denoised_weight;
    if (previous.defined()) {
      x = x + (denoised - previous) * (0.5 * denoised_weight * h / h_last);
    }
    x = x + run.noise_like(x) * (next * std::sqrt(-std::expm1(-2.0 * h)));
    previous = denoised;
    h_last = h;
  });
  return x;
}

// DPM-Solver++ (stochastic), eta = 1, r = 1/2: an ancestral half step to the log-midpoint, then
// an ancestral full step with the midpoint's estimate. The reference's VP alpha factors are 1
// here. ComfyUI draws the two noises of a step from a torchsde Brownian tree over sigma, where
// they share the increment between sigma and the midpoint; here that increment and the rest are
// seeded Gaussian draws from the sampler's generator, combined with the Brownian tree's
// correlation (same distribution as ComfyUI, not its values).
at::Tensor sample_dpmpp_sde(SamplerRun& run, at::Tensor x) {
  for_each_denoised_step(run, x, [&](double sigma, double next, const at::Tensor& denoised) {
    const double mid = log_midpoint(sigma, next);
    const at::Tensor to_mid = run.noise_like(x);
    const at::Tensor mid_to_next = run.noise_like(x);
    const double upper_span = sigma - mid;
    const double lower_span = mid - next;
    const at::Tensor to_next =
        (to_mid * std::sqrt(upper_span) + mid_to_next * std::sqrt(lower_span)) /
        std::sqrt(upper_span + lower_span);

    const auto [mid_down, mid_up] = ancestral_step(sigma, mid);
    const double mid_keep = mid_down / sigma;
    const at::Tensor x_mid = x * mid_keep + denoised * (1.0 - mid_keep) + to_mid * mid_up;
    const at::Tensor denoised_mid = run.denoise(x_mid, mid);

    const auto [down, up] = ancestral_step(sigma, next);
    const double keep = down / sigma;
    x = x * keep + denoised_mid * (1.0 - keep) + to_next * up;
  });
  return x;
}

// Latent consistency sampling: jump to the denoised estimate, then re-noise to the next sigma.
at::Tensor sample_lcm(SamplerRun& run, at::Tensor x) {
  run.for_each_step([&](int i) {
    const double next = run.sigma(i + 1);
    x = run.denoise(x, run.sigma(i));
    if (next > 0.0) x = x + run.noise_like(x) * next;
  });
  return x;
}

// UniPC (multistep predictor-corrector with data prediction), as ComfyUI runs it: the state is
// kept in VP form x_vp = x * alpha, order min(3, steps - 1) (at least 1), lower orders while the
// history fills and on the final steps, a final sigma of 0 replaced by 0.001, and the corrector
// reusing the model output at the predicted point. Bh1 uses B(h) = h, Bh2 B(h) = e^h - 1.
class UniPc {
 public:
  enum class Variant { kBh1, kBh2 };

  UniPc(SamplerRun& run, Variant variant) : run_(run), variant_(variant) {}

  at::Tensor sample(at::Tensor x) {
    const int steps = run_.steps();
    std::vector<double> sigmas;
    for (int i = 0; i <= steps; ++i) sigmas.push_back(run_.sigma(i));
    if (sigmas.back() == 0.0) sigmas.back() = 0.001;
    const int order = std::max(1, std::min(3, steps - 1));

    x = x / static_cast<double>(std::sqrt(1.0f + square_float(sigmas[0])));
    history_.push_back({sigmas[0], run_.denoise(ve_state(x, sigmas[0]), sigmas[0])});
    run_.for_each_step([&](int i) {
      const int target = i + 1;
      const int step_order = target < order ? target : std::min(order, steps + 1 - target);
      const bool last = target == steps;
      Update update = step(x, sigmas[target], step_order, !last);
      x = update.x;
      if (last) return;
      history_.push_back({sigmas[target], update.model});
      if (static_cast<int>(history_.size()) > order) history_.pop_front();
    });
    return x / marginals(sigmas.back()).alpha;
  }

 private:
  struct Marginals {
    double alpha;   // VP signal scale
    double std;     // VP noise scale
    double lambda;  // half log-SNR, log(alpha / std)
  };
  struct Point {
    double sigma;
    at::Tensor model;  // the data prediction at this point
  };
  struct Update {
    at::Tensor x;
    at::Tensor model;  // the model output at the predicted point when the corrector ran
  };
  struct Coefficients {
    double h_phi_1;  // e^hh - 1 with hh = -h
    double b_h;      // B(h)
    std::vector<std::vector<double>> powers;
    std::vector<double> rhs;
  };

  static float square_float(double sigma) {
    const auto s = static_cast<float>(sigma);
    return s * s;
  }

  // ComfyUI computes these from a float32 sigma in float32; the same rounding is kept here (it
  // matters at the final sigma 0.001).
  static Marginals marginals(double sigma) {
    const float log_alpha = 0.5f * std::log(1.0f / (square_float(sigma) + 1.0f));
    const float one_minus_alpha_sq = 1.0f - std::exp(2.0f * log_alpha);
    return {std::exp(log_alpha), std::sqrt(one_minus_alpha_sq),
            log_alpha - 0.5f * std::log(one_minus_alpha_sq)};
  }

  static at::Tensor ve_state(const at::Tensor& x_vp, double sigma) {
    return x_vp * static_cast<double>(std::sqrt(square_float(sigma) + 1.0f));
  }

  static at::Tensor solve(const std::vector<std::vector<double>>& matrix,
                          const std::vector<double>& rhs) {
    const auto n = static_cast<int64_t>(rhs.size());
    std::vector<double> flat;
    for (const auto& row : matrix) flat.insert(flat.end(), row.begin(), row.end());
    return at::linalg_solve(at::tensor(flat, at::kDouble).reshape({n, n}),
                            at::tensor(rhs, at::kDouble));
  }

  // sum_k weights[k] * terms[k]
  static at::Tensor combine(const at::Tensor& weights, const std::vector<at::Tensor>& terms) {
    at::Tensor sum = terms[0] * weights[0].item<double>();
    for (size_t k = 1; k < terms.size(); ++k) sum = sum + terms[k] * weights[k].item<double>();
    return sum;
  }

  Update step(const at::Tensor& x, double sigma_t, int order, bool use_corrector) {
    const Point& newest = history_.back();
    const Marginals now = marginals(newest.sigma);
    const Marginals then = marginals(sigma_t);
    const double h = then.lambda - now.lambda;

    std::vector<double> ratios;
    std::vector<at::Tensor> differences;
    for (int k = 1; k < order; ++k) {
      const Point& older = history_[history_.size() - 1 - k];
      const double ratio = (marginals(older.sigma).lambda - now.lambda) / h;
      ratios.push_back(ratio);
      differences.push_back((older.model - newest.model) / ratio);
    }
    ratios.push_back(1.0);

    const Coefficients c = coefficients(-h, ratios);
    const at::Tensor x_base = x * (then.std / now.std) - newest.model * (then.alpha * c.h_phi_1);
    at::Tensor predicted = x_base;
    if (!differences.empty()) {
      const at::Tensor rhos = order == 2 ? at::tensor({0.5}, at::kDouble)
                                         : solve(leading(c.powers, order - 1),
                                                 {c.rhs.begin(), c.rhs.end() - 1});
      predicted = x_base - combine(rhos, differences) * (then.alpha * c.b_h);
    }
    if (!use_corrector) return {predicted, at::Tensor()};

    const at::Tensor model_t = run_.denoise(ve_state(predicted, sigma_t), sigma_t);
    const at::Tensor rhos = order == 1 ? at::tensor({0.5}, at::kDouble) : solve(c.powers, c.rhs);
    at::Tensor correction = (model_t - newest.model) * rhos[order - 1].item<double>();
    if (!differences.empty()) correction = correction + combine(rhos, differences);
    return {x_base - correction * (then.alpha * c.b_h), model_t};
  }

  // The linear system R rho = b whose solution weighs the history's differences: R holds the
  // powers 0..order-1 of the step ratios, b the phi-function terms h phi_{k+1}(h) k! / B(h).
  Coefficients coefficients(double hh, const std::vector<double>& ratios) const {
    const auto order = static_cast<int>(ratios.size());
    Coefficients c;
    c.h_phi_1 = std::expm1(hh);
    c.b_h = variant_ == Variant::kBh1 ? hh : std::expm1(hh);
    c.powers.assign(order, std::vector<double>(order));
    c.rhs.resize(order);
    double h_phi_k = c.h_phi_1 / hh - 1.0;
    double factorial = 1.0;
    for (int i = 0; i < order; ++i) {
      for (int j = 0; j < order; ++j) c.powers[i][j] = std::pow(ratios[j], i);
      c.rhs[i] = h_phi_k * factorial / c.b_h;
      factorial *= i + 2;
      h_phi_k = h_phi_k / hh - 1.0 / factorial;
    }
    return c;
  }

  static std::vector<std::vector<double>> leading(const std::vector<std::vector<double>>& matrix,
                                                  int n) {
    std::vector<std::vector<double>> out;
    for (int i = 0; i < n; ++i) out.emplace_back(matrix[i].begin(), matrix[i].begin() + n);
    return out;
  }

  SamplerRun& run_;
  Variant variant_;
  std::deque<Point> history_;
};

const std::map<std::string, SamplerFn>& samplers() {
  static const std::map<std::string, SamplerFn> table = {
      {"euler", sample_euler},
      {"euler_ancestral", sample_euler_ancestral},
      {"heun", sample_heun},
      {"dpm_2", sample_dpm_2},
      {"dpm_2_ancestral", sample_dpm_2_ancestral},
      {"dpmpp_sde", sample_dpmpp_sde},
      {"dpmpp_2m", sample_dpmpp_2m},
      {"dpmpp_2m_sde", sample_dpmpp_2m_sde},
      {"lcm", sample_lcm},
      {"ddim", sample_euler},
      {"uni_pc", [](SamplerRun& run, at::Tensor x) {
         return UniPc(run, UniPc::Variant::kBh1).sample(std::move(x));
       }},
      {"uni_pc_bh2", [](SamplerRun& run, at::Tensor x) {
         return UniPc(run, UniPc::Variant::kBh2).sample(std::move(x));
       }},
  };
  return table;
}

std::vector<double> checked_sigmas(const at::Tensor& sigmas) {
  if (sigmas.dim() != 1) throw Error(ErrorCode::kInvalidArgument, "sigmas must be a 1-D tensor");
  const at::Tensor values = sigmas.to(at::kCPU, at::kDouble).contiguous();
  std::vector<double> out(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  for (size_t i = 0; i < out.size(); ++i) {
    const bool last = i + 1 == out.size();
    if (!std::isfinite(out[i]) || out[i] < 0.0 || (out[i] == 0.0 && !last)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "sigmas must be finite and positive (only the last may be 0)");
    }
  }
  return out;
}

}  // namespace

const std::vector<std::string>& sampler_names() {
  static const std::vector<std::string> names = {
      "euler",    "euler_ancestral", "heun",         "dpm_2", "dpm_2_ancestral", "dpmpp_sde",
      "dpmpp_2m", "dpmpp_2m_sde",    "lcm",          "ddim",  "uni_pc",          "uni_pc_bh2"};
  return names;
}

bool sampler_drops_penultimate_sigma(const std::string& sampler) {
  return sampler == "dpm_2" || sampler == "dpm_2_ancestral" || sampler == "uni_pc" ||
         sampler == "uni_pc_bh2";
}

at::Tensor run_sampler(const std::string& sampler, const Denoiser& denoise, at::Tensor x,
                       const at::Tensor& sigmas, uint64_t noise_seed, const SamplerHooks& hooks) {
  const auto it = samplers().find(sampler);
  if (it == samplers().end()) {
    std::string known;
    for (const auto& name : sampler_names()) known += (known.empty() ? "" : ", ") + name;
    throw Error(ErrorCode::kInvalidArgument,
                "unknown sampler '" + sampler + "' (known: " + known + ")");
  }
  std::vector<double> values = checked_sigmas(sigmas);
  if (values.size() < 2) return x;
  SamplerRun run(denoise, std::move(values), noise_seed, hooks);
  return it->second(run, std::move(x));
}

}  // namespace df::engine
