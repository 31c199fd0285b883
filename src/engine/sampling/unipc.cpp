// UniPC, the unified predictor-corrector multistep solver with data prediction (bh1 and bh2).
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <utility>
#include <vector>

#include "engine/sampling/sampler_families.h"

namespace df::engine::sampling {
namespace {

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

}  // namespace

at::Tensor sample_uni_pc(SamplerRun& run, at::Tensor x, bool bh2) {
  return UniPc(run, bh2 ? UniPc::Variant::kBh2 : UniPc::Variant::kBh1).sample(std::move(x));
}

}  // namespace df::engine::sampling
