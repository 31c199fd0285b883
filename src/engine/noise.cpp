// Seeded initial noise, KSampler sigma selection and the noised start latent, as ComfyUI does them.
#include "engine/noise.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "engine/samplers.h"
#include "engine/schedulers.h"

namespace df::engine {
namespace {

at::Tensor sampler_sigmas(const NoiseSchedule& schedule, const std::string& scheduler,
                          const std::string& sampler, int steps) {
  if (!sampler_drops_penultimate_sigma(sampler)) return compute_sigmas(schedule, scheduler, steps);
  const at::Tensor sigmas = compute_sigmas(schedule, scheduler, steps + 1);
  const int64_t count = sigmas.size(0);
  return at::cat({sigmas.narrow(0, 0, count - 2), sigmas.narrow(0, count - 1, 1)});
}

}  // namespace

at::Tensor comfy_initial_noise(const std::vector<int64_t>& latent_shape, uint64_t seed,
                               const std::vector<int>& batch_index) {
  if (latent_shape.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "initial noise needs a latent shape");
  }
  const auto options = at::TensorOptions().dtype(at::kFloat);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  if (batch_index.empty()) return at::randn(latent_shape, generator, options);

  if (*std::min_element(batch_index.begin(), batch_index.end()) < 0) {
    throw Error(ErrorCode::kInvalidArgument, "batch indices must not be negative");
  }
  std::vector<int64_t> item_shape = latent_shape;
  item_shape[0] = 1;
  std::map<int, at::Tensor> draws;
  for (int index : batch_index) draws[index];
  const int last = draws.rbegin()->first;
  for (int i = 0; i <= last; ++i) {
    at::Tensor draw = at::randn(item_shape, generator, options);
    if (auto it = draws.find(i); it != draws.end()) it->second = draw;
  }
  std::vector<at::Tensor> items;
  for (int index : batch_index) items.push_back(draws.at(index));
  return at::cat(items, 0);
}

at::Tensor noise_latent(const at::Tensor& latent, const at::Tensor& noise, double sigma0,
                        double sigma_max) {
  const bool from_top =
      std::abs(sigma_max - sigma0) <= 1e-5 * std::max(std::abs(sigma_max), std::abs(sigma0)) ||
      sigma0 > sigma_max;
  // float32 arithmetic, as the reference computes the scale from a float32 sigma.
  const auto sigma = static_cast<float>(sigma0);
  const float scale = from_top ? std::sqrt(1.0f + sigma * sigma) : sigma;
  return noise.to(at::kFloat) * static_cast<double>(scale) + latent.to(noise.device(), at::kFloat);
}

at::Tensor noise_latent(const NoiseSchedule& schedule, const at::Tensor& latent,
                        const at::Tensor& noise, double sigma0) {
  if (!schedule.flow()) return noise_latent(latent, noise, sigma0, schedule.sigma_max());
  return noise.to(at::kFloat) * sigma0 + latent.to(noise.device(), at::kFloat) * (1.0 - sigma0);
}

at::Tensor unscale_noise(const NoiseSchedule& schedule, const at::Tensor& latent, double sigma_last) {
  return schedule.flow() ? latent / (1.0 - sigma_last) : latent;
}

at::Tensor denoise_sigmas(const NoiseSchedule& schedule, const std::string& scheduler,
                          const std::string& sampler, int steps, double denoise) {
  if (denoise > 0.9999) return sampler_sigmas(schedule, scheduler, sampler, steps);
  if (denoise <= 0.0) return at::empty({0}, at::kFloat);
  const auto extended_steps = static_cast<int>(steps / denoise);
  const at::Tensor sigmas = sampler_sigmas(schedule, scheduler, sampler, extended_steps);
  const int64_t keep = std::min<int64_t>(sigmas.size(0), int64_t{steps} + 1);
  return sigmas.narrow(0, sigmas.size(0) - keep, keep).clone();
}

at::Tensor advanced_sigmas(const NoiseSchedule& schedule, const std::string& scheduler,
                           const std::string& sampler, int steps, int start_at_step,
                           int end_at_step, bool return_with_leftover_noise) {
  if (start_at_step < 0 || end_at_step < 0) {
    throw Error(ErrorCode::kInvalidArgument, "start and end steps must not be negative");
  }
  at::Tensor sigmas = sampler_sigmas(schedule, scheduler, sampler, steps);
  if (end_at_step < sigmas.size(0) - 1) {
    sigmas = sigmas.narrow(0, 0, end_at_step + 1).clone();
    if (!return_with_leftover_noise) sigmas[-1] = 0.0;
  }
  if (start_at_step >= sigmas.size(0) - 1) return at::empty({0}, at::kFloat);
  return sigmas.narrow(0, start_at_step, sigmas.size(0) - start_at_step).clone();
}

}  // namespace df::engine
