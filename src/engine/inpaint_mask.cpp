// Latent noise masks in sampling, and DifferentialDiffusion's per-step mask.
#include "engine/inpaint_mask.h"

#include <algorithm>

#include "core/error.h"

namespace df::engine {

at::Tensor prepare_noise_mask(const at::Tensor& mask, at::IntArrayRef latent_shape) {
  if (mask.dim() < 2 || mask.dim() > 4) {
    throw Error(ErrorCode::kInvalidArgument, "a noise mask must be [H,W], [N,H,W] or [N,1,H,W]");
  }
  at::Tensor m = mask.to(at::kFloat).reshape({-1, 1, mask.size(-2), mask.size(-1)});
  m = at::upsample_bilinear2d(m, {latent_shape[2], latent_shape[3]}, false);
  m = m.repeat({1, latent_shape[1], 1, 1});
  const int64_t batch = latent_shape[0];
  if (m.size(0) < batch) m = m.repeat({(batch + m.size(0) - 1) / m.size(0), 1, 1, 1});
  return m.narrow(0, 0, batch).contiguous();
}

namespace {

// The kept latent noised to sigma by the model's noise scaling (ComfyUI's scale_latent_inpaint):
// latent + sigma * noise, for flows (1 - sigma) * latent + sigma * noise.
at::Tensor latent_at(const NoiseSchedule& schedule, const at::Tensor& latent,
                     const at::Tensor& noise, double sigma) {
  if (schedule.flow()) return latent * (1.0 - sigma) + noise * sigma;
  return latent + noise * sigma;
}

}  // namespace

Denoiser masked_denoiser(const DiffusionModel& model, Denoiser denoise, at::Tensor mask,
                         at::Tensor latent, at::Tensor noise, at::Tensor sigmas) {
  return [&model, denoise = std::move(denoise), mask = std::move(mask), latent = std::move(latent),
          noise = std::move(noise), sigmas = std::move(sigmas)](const at::Tensor& x, double sigma) {
    const at::Tensor m = model.guidance.denoise_mask_function
                             ? model.guidance.denoise_mask_function(model.schedule, sigma, mask, sigmas)
                             : mask;
    const at::Tensor keep = 1.0 - m;
    const at::Tensor out = denoise(x * m + latent_at(model.schedule, latent, noise, sigma) * keep,
                                   sigma);
    return out * m + latent * keep;
  };
}

DenoiseMaskFunction differential_diffusion() {
  return [](const NoiseSchedule& schedule, double sigma, const at::Tensor& mask,
            const at::Tensor& sigmas) {
    const double sigma_to = std::max(schedule.sigma_min(), sigmas[-1].item<double>());
    const double ts_from = schedule.timestep_nearest(sigmas[0].item<double>());
    const double ts_to = schedule.timestep_nearest(sigma_to);
    const double current = schedule.timestep_nearest(sigma);
    const double threshold = (current - ts_to) / (ts_from - ts_to);
    return mask.ge(threshold).to(mask.scalar_type());
  };
}

}  // namespace df::engine
