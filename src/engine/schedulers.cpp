// ComfyUI's schedulers over the model's sigma table, reproducing its float32 arithmetic.
#include "engine/schedulers.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "core/error.h"

namespace df::engine {
namespace {

using SchedulerFn = std::function<std::vector<double>(const NoiseSchedule&, int)>;

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

// Karras et al. (2022): uniform in sigma^(1/rho), rho = 7, over the full table's range.
std::vector<double> karras_sigmas(const NoiseSchedule& schedule, int steps) {
  constexpr double kRho = 7.0;
  const double min_inv_rho = std::pow(schedule.sigma_min(), 1.0 / kRho);
  const double max_inv_rho = std::pow(schedule.sigma_max(), 1.0 / kRho);
  const at::Tensor ramp = at::linspace(0.0, 1.0, steps, at::kFloat);
  std::vector<double> sigmas =
      to_vector((ramp * (min_inv_rho - max_inv_rho) + max_inv_rho).pow(kRho));
  sigmas.push_back(0.0);
  return sigmas;
}

// Uniform in log sigma.
std::vector<double> exponential_sigmas(const NoiseSchedule& schedule, int steps) {
  const at::Tensor log_sigmas = at::linspace(std::log(schedule.sigma_max()),
                                             std::log(schedule.sigma_min()), steps, at::kFloat);
  std::vector<double> sigmas = to_vector(log_sigmas.exp());
  sigmas.push_back(0.0);
  return sigmas;
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

const std::map<std::string, SchedulerFn>& schedulers() {
  static const std::map<std::string, SchedulerFn> table = {
      {"normal", normal_sigmas},
      {"karras", karras_sigmas},
      {"exponential", exponential_sigmas},
      {"sgm_uniform", sgm_uniform_sigmas},
      {"simple", simple_sigmas},
      {"ddim_uniform", ddim_uniform_sigmas},
      {"beta", beta_sigmas},
  };
  return table;
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
  static const std::vector<std::string> names = {
      "normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"};
  return names;
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
  const auto it = schedulers().find(scheduler);
  if (it == schedulers().end()) {
    std::string known;
    for (const auto& name : scheduler_names()) known += (known.empty() ? "" : ", ") + name;
    throw Error(ErrorCode::kInvalidArgument,
                "unknown scheduler '" + scheduler + "' (known: " + known + ")");
  }
  if (steps < 1) throw Error(ErrorCode::kInvalidArgument, "steps must be at least 1");
  return float_tensor(it->second(schedule, steps));
}

}  // namespace df::engine
