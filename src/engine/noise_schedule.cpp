// NoiseSchedule: the training sigma table and ComfyUI's / diffusers' timestep <-> sigma maps.
#include "engine/noise_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace df::engine {
namespace {

// Betas in `dtype`. diffusers' "scaled_linear" is ComfyUI's (LDM's) "linear": squares of a linear
// ramp of square roots; diffusers' "linear" is a plain linear ramp.
at::Tensor training_betas(const NoiseScheduleConfig& config, at::ScalarType dtype) {
  const auto options = at::TensorOptions().dtype(dtype);
  const int64_t count = config.num_train_timesteps;
  if (config.beta_schedule == "scaled_linear") {
    return at::linspace(std::sqrt(config.beta_start), std::sqrt(config.beta_end), count, options)
        .pow(2);
  }
  if (config.beta_schedule == "linear") {
    return at::linspace(config.beta_start, config.beta_end, count, options);
  }
  throw Error(ErrorCode::kUnsupported, "noise schedule '" + config.beta_schedule +
                                           "' is not supported (scaled_linear, linear)");
}

// The continuous EDM timestep is log(sigma) times this, in float32 as ComfyUI computes it.
constexpr float kContinuousTimestepScale = 0.25f;

double continuous_timestep(double sigma) {
  return kContinuousTimestepScale * std::log(static_cast<float>(sigma));
}

// The flow schedules' sigma of t in [0, 1]: FLUX's exponential shift, or SD3's shift of the SNR
// (ComfyUI's time_snr_shift; shift - 1 is taken before rounding, as Python does).
template <typename Real>
Real shifted_flow_sigma(bool flux, double shift, Real t) {
  if (flux) {
    const auto e = static_cast<Real>(std::exp(shift));
    return e / (e + (Real(1) / t - Real(1)));
  }
  if (shift == 1.0) return t;
  const auto a = static_cast<Real>(shift);
  return a * t / (Real(1) + static_cast<Real>(shift - 1.0) * t);
}

// The flow schedules' table: float32 sigmas of t = 1/count .. 1, as ComfyUI computes it (for
// ModelSamplingDiscreteFlow from the timesteps t * multiplier divided back by the multiplier).
at::Tensor flow_table(bool flux, double shift, double multiplier, int64_t count) {
  at::Tensor table = at::empty({count}, at::kFloat);
  float* out = table.data_ptr<float>();
  const auto m = static_cast<float>(multiplier);
  for (int64_t i = 0; i < count; ++i) {
    const float t = static_cast<float>(i + 1) / static_cast<float>(count);
    out[i] = shifted_flow_sigma<float>(flux, shift, flux ? t : (t * m) / m);
  }
  return table;
}

at::Tensor sigmas_of(const at::Tensor& betas) {
  const at::Tensor alphas_cumprod = at::cumprod(1.0 - betas, 0);
  return ((1.0 - alphas_cumprod) / alphas_cumprod).pow(0.5);
}

}  // namespace

NoiseSchedule::NoiseSchedule(const NoiseScheduleConfig& config) : prediction_(config.prediction) {
  if (config.num_train_timesteps < 2) {
    throw Error(ErrorCode::kInvalidArgument,
                "a noise schedule needs at least 2 training timesteps");
  }
  // ComfyUI: float64 schedule, float32 sigmas and float32 logs of the float64 sigmas.
  const at::Tensor sigmas = sigmas_of(training_betas(config, at::kDouble));
  sigmas_ = sigmas.to(at::kFloat).contiguous();
  const at::Tensor log_sigmas = sigmas.log().to(at::kFloat).contiguous();
  log_sigmas_.assign(log_sigmas.data_ptr<float>(),
                     log_sigmas.data_ptr<float>() + log_sigmas.numel());
  // diffusers: the whole schedule in float32.
  const at::Tensor diffusers_log_sigmas =
      sigmas_of(training_betas(config, at::kFloat)).log().to(at::kDouble).contiguous();
  diffusers_log_sigmas_.assign(
      diffusers_log_sigmas.data_ptr<double>(),
      diffusers_log_sigmas.data_ptr<double>() + diffusers_log_sigmas.numel());
}

double NoiseSchedule::sigma_min() const { return sigmas_[0].item<double>(); }

double NoiseSchedule::sigma_max() const { return sigmas_[size() - 1].item<double>(); }

void NoiseSchedule::set_sigmas(const at::Tensor& sigmas) {
  sigmas_ = sigmas.to(at::kFloat).contiguous();
  const at::Tensor log_sigmas = sigmas_.log().contiguous();
  log_sigmas_.assign(log_sigmas.data_ptr<float>(),
                     log_sigmas.data_ptr<float>() + log_sigmas.numel());
}

double NoiseSchedule::training_timestep(size_t index) const {
  return static_cast<double>(static_cast<int64_t>(index) * skip_steps_ + (skip_steps_ - 1));
}

NoiseSchedule NoiseSchedule::with_prediction(Prediction prediction) const {
  NoiseSchedule copy = *this;
  copy.prediction_ = prediction;
  copy.lcm_boundary_ = false;
  return copy;
}

NoiseSchedule NoiseSchedule::with_lcm_distillation() const {
  constexpr int64_t kOriginalTimesteps = 50;
  NoiseSchedule copy = *this;
  copy.prediction_ = Prediction::kEpsilon;
  copy.lcm_boundary_ = true;
  copy.skip_steps_ = size() / kOriginalTimesteps;
  at::Tensor kept = at::empty({kOriginalTimesteps}, at::kFloat);
  for (int64_t x = 0; x < kOriginalTimesteps; ++x) {
    kept[kOriginalTimesteps - 1 - x] = sigmas_[size() - 1 - x * copy.skip_steps_];
  }
  copy.set_sigmas(kept);
  return copy;
}

NoiseSchedule NoiseSchedule::with_zero_terminal_snr() const {
  NoiseSchedule copy = *this;
  const at::Tensor alphas_cumprod = 1.0 / (sigmas_ * sigmas_ + 1.0);
  at::Tensor root = alphas_cumprod.sqrt();
  const at::Tensor first = root[0].clone(), last = root[-1].clone();
  root = (root - last) * (first / (first - last));
  at::Tensor alphas_bar = root.pow(2);
  alphas_bar[-1] = 4.8973451890853435e-08;
  copy.set_sigmas(((1.0 - alphas_bar) / alphas_bar).pow(0.5));
  return copy;
}

NoiseSchedule NoiseSchedule::with_continuous_edm(double sigma_min, double sigma_max,
                                                 double sigma_data, Prediction prediction) const {
  constexpr int64_t kTableSize = 1000;
  if (!(sigma_min > 0.0 && sigma_max > sigma_min && sigma_data > 0.0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "a continuous EDM schedule needs 0 < sigma_min < sigma_max");
  }
  NoiseSchedule copy = *this;
  copy.prediction_ = prediction;
  copy.lcm_boundary_ = false;
  copy.skip_steps_ = 1;
  copy.map_ = TimestepMap::kEdm;
  copy.sigma_data_ = sigma_data;
  copy.set_sigmas(
      at::linspace(std::log(sigma_min), std::log(sigma_max), kTableSize, at::kFloat).exp());
  return copy;
}

NoiseSchedule NoiseSchedule::discrete_flow(double shift, double multiplier) {
  if (!(shift >= 0.0 && multiplier > 0.0)) {
    throw Error(ErrorCode::kInvalidArgument, "a flow schedule needs shift >= 0 and multiplier > 0");
  }
  constexpr int64_t kTableSize = 1000;
  NoiseSchedule schedule;
  schedule.prediction_ = Prediction::kFlow;
  schedule.map_ = TimestepMap::kFlowShift;
  schedule.shift_ = shift;
  schedule.multiplier_ = multiplier;
  schedule.set_sigmas(flow_table(false, shift, multiplier, kTableSize));
  return schedule;
}

NoiseSchedule NoiseSchedule::flux_flow(double shift) {
  constexpr int64_t kTableSize = 10000;
  NoiseSchedule schedule;
  schedule.prediction_ = Prediction::kFlow;
  schedule.map_ = TimestepMap::kFluxShift;
  schedule.shift_ = shift;
  schedule.set_sigmas(flow_table(true, shift, 1.0, kTableSize));
  return schedule;
}

double NoiseSchedule::flow_sigma(double t) const {
  return shifted_flow_sigma(map_ == TimestepMap::kFluxShift, shift_, t);
}

double NoiseSchedule::timestep_nearest(double sigma) const {
  if (flow()) return sigma * multiplier_;
  if (continuous()) return continuous_timestep(sigma);
  const float log_sigma = std::log(static_cast<float>(sigma));
  size_t best = 0;
  float best_distance = std::abs(log_sigma - log_sigmas_[0]);
  for (size_t i = 1; i < log_sigmas_.size(); ++i) {
    const float distance = std::abs(log_sigma - log_sigmas_[i]);
    if (distance < best_distance) {
      best = i;
      best_distance = distance;
    }
  }
  return training_timestep(best);
}

double NoiseSchedule::timestep_interpolated(double sigma) const {
  if (flow()) return sigma * multiplier_;
  if (continuous()) return continuous_timestep(sigma);
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  const auto& table = diffusers_log_sigmas_;
  // The last entry not above log_sigma, kept below the top so that low + 1 exists.
  const auto above = std::upper_bound(table.begin(), table.end(), log_sigma);
  const size_t not_above = static_cast<size_t>(above - table.begin());
  const size_t low = std::min(not_above == 0 ? 0 : not_above - 1, table.size() - 2);
  const double weight =
      std::clamp((table[low] - log_sigma) / (table[low] - table[low + 1]), 0.0, 1.0);
  return (1.0 - weight) * static_cast<double>(low) + weight * static_cast<double>(low + 1);
}

double NoiseSchedule::sigma_at(double t) const {
  if (flow()) return flow_sigma(t / multiplier_);
  if (continuous()) return std::exp(static_cast<float>(t) / kContinuousTimestepScale);
  const float index = static_cast<float>((t - double(skip_steps_ - 1)) / double(skip_steps_));
  const float clamped = std::clamp(index, 0.0f, static_cast<float>(size() - 1));
  const auto low = static_cast<size_t>(std::floor(clamped));
  const auto high = static_cast<size_t>(std::ceil(clamped));
  const float weight = clamped - std::trunc(clamped);
  const float log_sigma = (1.0f - weight) * log_sigmas_[low] + weight * log_sigmas_[high];
  return std::exp(log_sigma);
}

double NoiseSchedule::percent_to_sigma(double percent) const {
  if (percent <= 0.0) return flow() ? 1.0 : 999999999.9;
  if (percent >= 1.0) return 0.0;
  if (flow()) return flow_sigma(1.0 - percent);
  if (!continuous()) return sigma_at((1.0 - percent) * 999.0);
  const double log_min = std::log(sigma_min()), log_max = std::log(sigma_max());
  return std::exp((log_max - log_min) * (1.0 - percent) + log_min);
}

}  // namespace df::engine
