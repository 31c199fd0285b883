// ComfyUI's schedulers over the model's sigma table, reproducing its float32 arithmetic.
#include "engine/schedulers.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <utility>

#include "core/error.h"

namespace df::engine {
namespace {

using SchedulerFn = std::function<at::Tensor(const NoiseSchedule&, int)>;

at::Tensor float_tensor(const std::vector<double>& values) {
  return at::tensor(values, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat);
}

std::vector<double> to_vector(const at::Tensor& tensor) {
  const at::Tensor values = tensor.to(at::kDouble).contiguous();
  return {values.data_ptr<double>(), values.data_ptr<double>() + values.numel()};
}

double table_sigma(const NoiseSchedule& schedule, int64_t index) {
  return schedule.sigmas()[index].item<double>();
}

// sigma(t) for float32 timesteps spread linearly from the top timestep down ("normal", and
// "sgm_uniform", which spreads steps + 1 points and drops the last).
std::vector<double> linear_timestep_sigmas(const NoiseSchedule& schedule, int steps, bool sgm) {
  const double start = schedule.timestep_nearest(schedule.sigma_max());
  const double end = schedule.timestep_nearest(schedule.sigma_min());
  at::Tensor timesteps = at::linspace(start, end, sgm ? steps + 1 : steps, at::kFloat);
  if (sgm) timesteps = timesteps.narrow(0, 0, steps);
  std::vector<double> sigmas;
  for (double t : to_vector(timesteps)) sigmas.push_back(schedule.sigma_at(t));
  sigmas.push_back(0.0);
  return sigmas;
}

std::vector<double> normal_sigmas(const NoiseSchedule& schedule, int steps) {
  return linear_timestep_sigmas(schedule, steps, false);
}

std::vector<double> sgm_uniform_sigmas(const NoiseSchedule& schedule, int steps) {
  return linear_timestep_sigmas(schedule, steps, true);
}

// Every (T / steps)-th table entry from the top, the stride kept fractional.
std::vector<double> simple_sigmas(const NoiseSchedule& schedule, int steps) {
  const int64_t size = schedule.size();
  const double stride = static_cast<double>(size) / steps;
  std::vector<double> sigmas;
  for (int i = 0; i < steps; ++i) {
    sigmas.push_back(table_sigma(schedule, size - 1 - static_cast<int64_t>(i * stride)));
  }
  sigmas.push_back(0.0);
  return sigmas;
}

// DDIM's uniform timesteps: every (T // steps)-th entry starting at index 1, highest first.
std::vector<double> ddim_uniform_sigmas(const NoiseSchedule& schedule, int steps) {
  const int64_t stride = std::max<int64_t>(schedule.size() / steps, 1);
  std::vector<double> sigmas;
  for (int64_t t = 1; t < schedule.size(); t += stride) sigmas.push_back(table_sigma(schedule, t));
  std::reverse(sigmas.begin(), sigmas.end());
  sigmas.push_back(0.0);
  return sigmas;
}

// Timesteps at the Beta(0.6, 0.6) quantiles of 1, 1 - 1/steps, ..., rounded to table indices;
// repeated indices are dropped (arXiv:2407.12173).
std::vector<double> beta_sigmas(const NoiseSchedule& schedule, int steps) {
  constexpr double kAlpha = 0.6;
  constexpr double kBeta = 0.6;
  const double top = static_cast<double>(schedule.size() - 1);
  const double spacing = 1.0 / steps;
  std::vector<double> sigmas;
  double last_t = -1.0;
  for (int i = 0; i < steps; ++i) {
    const double t = std::nearbyint(beta_quantile(1.0 - i * spacing, kAlpha, kBeta) * top);
    if (t != last_t) sigmas.push_back(table_sigma(schedule, static_cast<int64_t>(t)));
    last_t = t;
  }
  sigmas.push_back(0.0);
  return sigmas;
}

// A scheduler that lists its sigmas as host values.
SchedulerFn listed(std::vector<double> (*fn)(const NoiseSchedule&, int)) {
  return [fn](const NoiseSchedule& schedule, int steps) { return float_tensor(fn(schedule, steps)); };
}

// ComfyUI's SCHEDULER_HANDLERS order.
const std::vector<std::pair<std::string, SchedulerFn>>& schedulers() {
  static const std::vector<std::pair<std::string, SchedulerFn>> table = {
      {"simple", listed(simple_sigmas)},
      {"sgm_uniform", listed(sgm_uniform_sigmas)},
      {"karras",
       [](const NoiseSchedule& s, int steps) {
         return karras_sigmas(steps, s.sigma_min(), s.sigma_max());
       }},
      {"exponential",
       [](const NoiseSchedule& s, int steps) {
         return exponential_sigmas(steps, s.sigma_min(), s.sigma_max());
       }},
      {"ddim_uniform", listed(ddim_uniform_sigmas)},
      {"beta", listed(beta_sigmas)},
      {"normal", listed(normal_sigmas)},
      {"linear_quadratic",
       [](const NoiseSchedule& s, int steps) { return linear_quadratic_sigmas(steps, s.sigma_max()); }},
      {"kl_optimal",
       [](const NoiseSchedule& s, int steps) {
         return kl_optimal_sigmas(steps, s.sigma_min(), s.sigma_max());
       }},
  };
  return table;
}

const SchedulerFn& find_scheduler(const std::string& name) {
  for (const auto& [known, fn] : schedulers()) {
    if (known == name) return fn;
  }
  std::string known;
  for (const auto& each : scheduler_names()) known += (known.empty() ? "" : ", ") + each;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown scheduler '" + name + "' (known: " + known + ")");
}

void check_steps(int steps) {
  if (steps < 1) throw Error(ErrorCode::kInvalidArgument, "steps must be at least 1");
}

void check_range(double sigma_min, double sigma_max, bool positive) {
  const bool ordered = std::isfinite(sigma_min) && std::isfinite(sigma_max) &&
                       sigma_min <= sigma_max && sigma_min >= 0.0;
  if (!ordered || (positive && sigma_min <= 0.0)) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("sigma_min and sigma_max must be finite with ") +
                    (positive ? "0 < " : "0 <= ") + "sigma_min <= sigma_max");
  }
}

at::Tensor append_zero(const at::Tensor& sigmas) {
  return at::cat({sigmas, at::zeros({1}, sigmas.options())});
}

// The continued fraction of the regularized incomplete beta function I_x(a, b), evaluated with
// the modified Lentz method; converges quickly for x < (a + 1) / (a + b + 2).
double incomplete_beta_fraction(double x, double a, double b) {
  constexpr double kTiny = 1e-300;
  constexpr double kEpsilon = 1e-16;
  auto guard = [](double v) { return std::abs(v) < kTiny ? kTiny : v; };
  double c = 1.0;
  double d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
  double fraction = d;
  for (int m = 1; m <= 1000; ++m) {
    const double even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
    d = 1.0 / guard(1.0 + even * d);
    c = guard(1.0 + even / c);
    fraction *= d * c;
    const double odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
    d = 1.0 / guard(1.0 + odd * d);
    c = guard(1.0 + odd / c);
    const double delta = d * c;
    fraction *= delta;
    if (std::abs(delta - 1.0) < kEpsilon) break;
  }
  return fraction;
}

double regularized_incomplete_beta(double x, double a, double b) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) +
                           b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * incomplete_beta_fraction(x, a, b) / a;
  return 1.0 - front * incomplete_beta_fraction(1.0 - x, b, a) / b;
}

}  // namespace

const std::vector<std::string>& scheduler_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : schedulers()) out.push_back(entry.first);
    return out;
  }();
  return names;
}

at::Tensor karras_sigmas(int steps, double sigma_min, double sigma_max, double rho) {
  check_steps(steps);
  check_range(sigma_min, sigma_max, false);
  const double min_inv_rho = std::pow(sigma_min, 1.0 / rho);
  const double max_inv_rho = std::pow(sigma_max, 1.0 / rho);
  const at::Tensor ramp = at::linspace(0.0, 1.0, steps, at::kFloat);
  return append_zero((ramp * (min_inv_rho - max_inv_rho) + max_inv_rho).pow(rho));
}

at::Tensor exponential_sigmas(int steps, double sigma_min, double sigma_max) {
  check_steps(steps);
  check_range(sigma_min, sigma_max, true);
  return append_zero(
      at::linspace(std::log(sigma_max), std::log(sigma_min), steps, at::kFloat).exp());
}

at::Tensor polyexponential_sigmas(int steps, double sigma_min, double sigma_max, double rho) {
  check_steps(steps);
  check_range(sigma_min, sigma_max, true);
  const at::Tensor ramp = at::linspace(1.0, 0.0, steps, at::kFloat).pow(rho);
  const double log_min = std::log(sigma_min);
  return append_zero((ramp * (std::log(sigma_max) - log_min) + log_min).exp());
}

at::Tensor kl_optimal_sigmas(int steps, double sigma_min, double sigma_max) {
  check_steps(steps);
  check_range(sigma_min, sigma_max, false);
  at::Tensor ramp = at::arange(steps, at::kFloat);
  if (steps > 1) ramp = ramp.div_(steps - 1);
  return append_zero(
      (ramp * std::atan(sigma_min) + (1 - ramp) * std::atan(sigma_max)).tan_());
}

at::Tensor linear_quadratic_sigmas(int steps, double sigma_max, double threshold_noise) {
  check_steps(steps);
  std::vector<double> ramp = {0.0, 1.0};
  if (steps > 1) {
    const int linear_steps = steps / 2;
    const int quadratic_steps = steps - linear_steps;
    const double step_diff = linear_steps - threshold_noise * steps;
    const double quadratic_coef =
        step_diff / (linear_steps * std::pow(static_cast<double>(quadratic_steps), 2));
    const double linear_coef = threshold_noise / linear_steps -
                               2 * step_diff / std::pow(static_cast<double>(quadratic_steps), 2);
    const double constant = quadratic_coef * std::pow(static_cast<double>(linear_steps), 2);
    ramp.clear();
    for (int i = 0; i < linear_steps; ++i) ramp.push_back(i * threshold_noise / linear_steps);
    for (int i = linear_steps; i < steps; ++i) {
      ramp.push_back(quadratic_coef * std::pow(static_cast<double>(i), 2) + linear_coef * i +
                     constant);
    }
    ramp.push_back(1.0);
  }
  std::vector<double> sigmas;
  for (double r : ramp) sigmas.push_back(1.0 - r);
  return float_tensor(sigmas) * at::scalar_tensor(sigma_max, at::kFloat);
}

at::Tensor sd_turbo_sigmas(const NoiseSchedule& schedule, int steps, double denoise) {
  check_steps(steps);
  if (!(denoise >= 0.0 && denoise <= 1.0)) {
    throw Error(ErrorCode::kInvalidArgument, "denoise must be in [0, 1]");
  }
  const int start = 10 - static_cast<int>(10 * denoise);
  std::vector<double> sigmas;
  for (int index = start; index < std::min(10, start + steps); ++index) {
    sigmas.push_back(schedule.sigma_at(999 - 100 * index));
  }
  sigmas.push_back(0.0);
  return float_tensor(sigmas);
}

at::Tensor basic_scheduler_sigmas(const NoiseSchedule& schedule, const std::string& scheduler,
                                  int steps, double denoise) {
  check_steps(steps);
  int total_steps = steps;
  if (denoise < 1.0) {
    if (denoise <= 0.0) return at::empty({0}, at::kFloat);
    total_steps = static_cast<int>(steps / denoise);
  }
  const at::Tensor sigmas = compute_sigmas(schedule, scheduler, total_steps);
  const int64_t keep = std::min<int64_t>(sigmas.size(0), int64_t{steps} + 1);
  return sigmas.narrow(0, sigmas.size(0) - keep, keep).clone();
}

double beta_quantile(double p, double a, double b) {
  if (p <= 0.0) return 0.0;
  if (p >= 1.0) return 1.0;
  // The median of a symmetric Beta is exactly 1/2 (and 0.5 * 999 must stay a tie for rint).
  if (a == b && p == 0.5) return 0.5;
  // I_x is increasing in x: bisect until the bracket cannot shrink any further.
  double low = 0.0;
  double high = 1.0;
  for (int i = 0; i < 1100; ++i) {
    const double mid = 0.5 * (low + high);
    if (mid <= low || mid >= high) break;
    (regularized_incomplete_beta(mid, a, b) < p ? low : high) = mid;
  }
  return 0.5 * (low + high);
}

at::Tensor compute_sigmas(const NoiseSchedule& schedule, const std::string& scheduler, int steps) {
  const SchedulerFn& fn = find_scheduler(scheduler);
  check_steps(steps);
  return fn(schedule, steps);
}

}  // namespace df::engine
