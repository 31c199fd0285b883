// One sampler run's model calls, noise and hooks, and the step helpers the samplers share.
#include "engine/sampling/sampler_run.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "core/error.h"
#include "engine/noise_schedule.h"
#include "engine/sampling/brownian_tree.h"

namespace df::engine {
namespace {

// Where report_uncond_denoised() leaves the unconditional estimate of the model call in progress.
thread_local at::Tensor* uncond_slot = nullptr;

}  // namespace

void report_uncond_denoised(const at::Tensor& uncond) {
  if (uncond_slot != nullptr) *uncond_slot = uncond;
}

namespace sampling {

at::Generator seeded_generator(const at::Device& device, uint64_t seed) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(seed);
  if (!device.is_cuda()) {
    throw Error(ErrorCode::kUnsupported, "seeded noise needs a CPU or CUDA device");
  }
  at::Generator generator = at::detail::getCUDAHooks().getNewGenerator(device.index());
  generator.set_current_seed(seed);
  return generator;
}

NoiseSampler default_noise_sampler(const at::Tensor& x, uint64_t seed) {
  const at::Device device = x.device();
  const uint64_t generator_seed = device.is_cpu() ? seed + 1 : seed;
  auto generator = std::make_shared<at::Generator>(seeded_generator(device, generator_seed));
  const std::vector<int64_t> shape = x.sizes().vec();
  const at::TensorOptions options = x.options();
  return [generator, shape, options](double, double) {
    return at::randn(shape, *generator, options);
  };
}

NoiseSampler brownian_noise_sampler(const at::Tensor& x, const std::vector<double>& sigmas,
                                    uint64_t seed, bool on_device) {
  double sigma_min = 0.0;
  double sigma_max = 0.0;
  for (double sigma : sigmas) {
    if (sigma > 0.0 && (sigma_min == 0.0 || sigma < sigma_min)) sigma_min = sigma;
    sigma_max = std::max(sigma_max, sigma);
  }
  const at::Device device = x.device();
  const at::Device tree_device = on_device ? device : at::Device(at::kCPU);
  auto tree = std::make_shared<BrownianTree>(as_float32(sigma_min), as_float32(sigma_max), seed,
                                             x.sizes().vec(),
                                             x.options().device(tree_device));
  // As ComfyUI: the increment comes back in the sigmas' float32 on x's device, signed for the
  // downward step, over sqrt|sigma_next - sigma| computed in float32.
  return [tree, device](double sigma, double sigma_next) {
    const auto on = at::TensorOptions().dtype(at::kFloat).device(device);
    const at::Tensor from = at::scalar_tensor(sigma, on);
    const at::Tensor to = at::scalar_tensor(sigma_next, on);
    const double low = std::min(as_float32(sigma), as_float32(sigma_next));
    const double high = std::max(as_float32(sigma), as_float32(sigma_next));
    const double sign = sigma_next < sigma ? -1.0 : 1.0;
    const at::Tensor w = tree->increment(low, high).to(device, at::kFloat) * sign;
    return w / (to - from).abs().sqrt();
  };
}

SamplerRun::SamplerRun(const Denoiser& denoise, std::vector<double> sigmas, uint64_t noise_seed,
                       const SamplerHooks& hooks)
    : denoise_(denoise), sigmas_(std::move(sigmas)), noise_seed_(noise_seed), hooks_(hooks) {}

Estimate SamplerRun::estimate(const at::Tensor& x, double sigma) {
  at::Tensor uncond;
  at::Tensor* const outer_slot = uncond_slot;
  uncond_slot = &uncond;
  try {
    last_denoised_ = denoise_(x, sigma);
  } catch (...) {
    uncond_slot = outer_slot;
    throw;
  }
  uncond_slot = outer_slot;
  return {last_denoised_, uncond.defined() ? uncond : last_denoised_};
}

bool SamplerRun::flow() const {
  return hooks_.model_sampling != nullptr && hooks_.model_sampling->flow();
}

double SamplerRun::half_log_snr(double sigma) const {
  if (!flow()) return -std::log(sigma);
  const auto s = static_cast<float>(sigma);
  return -std::log(s / (1.0f - s));
}

double SamplerRun::sigma_of_half_log_snr(double lambda) const {
  if (!flow()) return std::exp(-lambda);
  return 1.0f / (1.0f + std::exp(static_cast<float>(lambda)));
}

double SamplerRun::alpha(double sigma) const {
  return flow() ? sigma * std::exp(half_log_snr(sigma)) : 1.0;
}

void SamplerRun::offset_first_sigma_for_snr() {
  constexpr double kPercentOffset = 1e-4;
  if (!flow() || sigmas_.size() < 2 || sigmas_[0] < 1.0) return;
  sigmas_[0] = as_float32(hooks_.model_sampling->percent_to_sigma(kPercentOffset));
}

at::Tensor SamplerRun::noise_scaling(double sigma, const at::Tensor& noise,
                                     const at::Tensor& x) const {
  if (flow()) return noise * sigma + x * (1.0 - sigma);
  return noise * sigma + x;
}

at::Tensor SamplerRun::noise(const at::Tensor& x, double sigma, double sigma_next) {
  if (!noise_sampler_) noise_sampler_ = default_noise_sampler(x, noise_seed_);
  return noise_sampler_(sigma, sigma_next).to(x.scalar_type());
}

void SamplerRun::repeat_step(int count, const std::function<void(int)>& step) {
  for (int i = 0; i < count; ++i) run_one_step([&] { step(i); }, i + 1, count);
}

void SamplerRun::repeat_until(const std::function<bool()>& done, const std::function<void()>& step) {
  for (int i = 0; !done(); ++i) run_one_step(step, i + 1, std::max(steps(), i + 1));
}

void SamplerRun::run_one_step(const std::function<void()>& step, int number, int total) {
  if (hooks_.should_cancel && hooks_.should_cancel()) {
    throw Error(ErrorCode::kCanceled, "sampling was canceled");
  }
  step();
  if (hooks_.on_step) hooks_.on_step(number, total);
  if (hooks_.on_denoised && last_denoised_.defined()) hooks_.on_denoised(last_denoised_);
}

at::Tensor derivative(const at::Tensor& x, const at::Tensor& denoised, double sigma) {
  return (x - denoised) / sigma;
}

AncestralStep ancestral_step(double sigma_from, double sigma_to, double eta) {
  if (eta == 0.0) return {sigma_to, 0.0};
  const double up = std::min(
      sigma_to, eta * std::sqrt(sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) /
                                (sigma_from * sigma_from)));
  return {std::sqrt(sigma_to * sigma_to - up * up), up};
}

FlowAncestralStep flow_ancestral_step(double sigma_from, double sigma_to, double eta) {
  const double down = sigma_to * (1.0 + (sigma_to / sigma_from - 1.0) * eta);
  const double alpha_to = 1.0 - sigma_to;
  const double alpha_down = 1.0 - down;
  const double renoise = std::sqrt(std::max(
      0.0, sigma_to * sigma_to - down * down * alpha_to * alpha_to / (alpha_down * alpha_down)));
  return {down, alpha_to / alpha_down, renoise};
}

double log_midpoint(double a, double b) { return std::exp(0.5 * (std::log(a) + std::log(b))); }

double as_float32(double value) { return static_cast<double>(static_cast<float>(value)); }

}  // namespace sampling
}  // namespace df::engine
