// KSampler: ComfyUI's sampling entry point on top of the engine's schedules and samplers.
#include "engine/ksampler.h"

#include <cmath>
#include <numeric>
#include <optional>
#include <vector>

#include "core/error.h"
#include "engine/noise.h"
#include "engine/schedulers.h"

namespace df::engine {
namespace {

// Repeats a context along the sequence axis to `length` tokens (a multiple of its own length).
at::Tensor repeat_to(const at::Tensor& context, int64_t length) {
  const int64_t times = length / context.size(1);
  return times == 1 ? context : context.repeat({1, times, 1});
}

// SDXL size/crop conditioning as ComfyUI computes it for CLIPTextEncode conditionings.
at::Tensor time_ids(const DiffusionModel& model, int64_t height, int64_t width, bool negative) {
  std::vector<float> ids;
  if (model.requires_aesthetics_score) {
    const float aesthetic = negative ? 2.5f : 6.0f;
    ids = {float(height), float(width), 0.f, 0.f, aesthetic};
  } else {
    ids = {float(height), float(width), 0.f, 0.f, float(height), float(width)};
  }
  return at::tensor(ids, at::kFloat).unsqueeze(0);
}

at::Tensor to_denoised(const DiffusionModel& model, const at::Tensor& x, const at::Tensor& out,
                       double sigma) {
  switch (model.schedule.prediction()) {
    case Prediction::kEpsilon:
      return x - out * sigma;
    case Prediction::kVPrediction: {
      const double s2 = sigma * sigma + 1.0;
      return x * (1.0 / s2) - out * (sigma / std::sqrt(s2));
    }
    case Prediction::kSample:
      return out;
  }
  return out;
}

// One UNet call's conditioning: `rows` conditionings (positive first), each once per latent.
struct CondBatch {
  int64_t rows = 1;
  at::Tensor context;
  at::Tensor pooled;  // SDXL only
  at::Tensor ids;     // SDXL only
};

// ComfyUI batches positive and negative into one UNet call when their token lengths repeat to a
// common length at most 4x the shorter one, and runs them one after the other otherwise.
std::vector<CondBatch> cond_batches(const DiffusionModel& model, const Conditioning& positive,
                                    const Conditioning& negative, bool guided, int64_t height,
                                    int64_t width) {
  const bool sdxl = model.family == Family::kSDXL || model.family == Family::kSDXLRefiner;
  const RuntimePlacement placement = model.placement;
  auto placed = [&](CondBatch batch) {
    batch.context = batch.context.to(placement.device, placement.dtype);
    if (sdxl) {
      batch.pooled = batch.pooled.to(placement.device, placement.dtype);
      batch.ids = batch.ids.to(placement.device, placement.dtype);
    }
    return batch;
  };
  CondBatch cond{1, positive.context, positive.pooled, time_ids(model, height, width, false)};
  if (!guided) return {placed(cond)};
  CondBatch uncond{1, negative.context, negative.pooled, time_ids(model, height, width, true)};
  const int64_t shorter = std::min(positive.context.size(1), negative.context.size(1));
  const int64_t length = std::lcm(positive.context.size(1), negative.context.size(1));
  if (length / shorter > 4) return {placed(cond), placed(uncond)};
  CondBatch both{2, at::cat({repeat_to(cond.context, length), repeat_to(uncond.context, length)}),
                 at::Tensor(), at::Tensor()};
  if (sdxl) {
    both.pooled = at::cat({cond.pooled, uncond.pooled});
    both.ids = at::cat({cond.ids, uncond.ids});
  }
  return {placed(both)};
}

}  // namespace

Denoiser make_guided_denoiser(const DiffusionModel& model, const Conditioning& positive,
                              const Conditioning& negative, double cfg, int64_t pixel_height,
                              int64_t pixel_width, TimestepMapping mapping) {
  const bool guided = std::abs(cfg - 1.0) > 1e-9;
  const bool sdxl = model.family == Family::kSDXL || model.family == Family::kSDXLRefiner;
  const RuntimePlacement placement = model.placement;
  const std::vector<CondBatch> batches =
      cond_batches(model, positive, negative, guided, pixel_height, pixel_width);

  return [&model, guided, sdxl, cfg, batches, placement, mapping](const at::Tensor& x,
                                                                   double sigma) {
    at::InferenceMode guard;
    const int64_t batch = x.size(0);
    const double c_in = 1.0 / std::sqrt(sigma * sigma + 1.0);
    const double t = mapping == TimestepMapping::kNearest
                         ? model.schedule.timestep_nearest(sigma)
                         : model.schedule.timestep_interpolated(sigma);
    // Denoised rows [positive..., negative...], each conditioning once per latent in the batch.
    std::vector<at::Tensor> denoised;
    for (const CondBatch& conds : batches) {
      at::Tensor x_in = conds.rows == 1 ? x : x.repeat({conds.rows, 1, 1, 1});
      at::Tensor sample = (x_in * c_in).to(placement.device, placement.dtype);
      at::Tensor timesteps =
          at::full({conds.rows * batch}, t,
                   at::TensorOptions().dtype(at::kFloat).device(placement.device));
      std::optional<UNetAddedConditioning> added;
      if (sdxl) {
        added = UNetAddedConditioning{conds.pooled.repeat_interleave(batch, 0),
                                      conds.ids.repeat_interleave(batch, 0)};
      }
      at::Tensor out = model.unet
                           .forward(sample, timesteps, conds.context.repeat_interleave(batch, 0),
                                    added)
                           .to(x.device(), at::kFloat);
      denoised.push_back(to_denoised(model, x_in, out, sigma));
    }
    at::Tensor all = denoised.size() == 1 ? denoised.front() : at::cat(denoised);
    if (!guided) return all;
    at::Tensor cond = all.narrow(0, 0, batch);
    at::Tensor uncond = all.narrow(0, batch, batch);
    return uncond + (cond - uncond) * cfg;
  };
}

at::Tensor ksampler_sigmas(const NoiseSchedule& schedule, const KSamplerParams& params) {
  if (params.steps < 1) throw Error(ErrorCode::kInvalidArgument, "steps must be at least 1");
  if (params.denoise <= 0.0 || params.denoise > 1.0) {
    throw Error(ErrorCode::kInvalidArgument, "denoise must be in (0, 1]");
  }
  const bool advanced = params.start_at_step != 0 || params.end_at_step < params.steps ||
                        params.return_with_leftover_noise;
  if (!advanced) {
    return denoise_sigmas(schedule, params.scheduler, params.sampler, params.steps, params.denoise);
  }
  return advanced_sigmas(schedule, params.scheduler, params.sampler, params.steps,
                         params.start_at_step, params.end_at_step,
                         params.return_with_leftover_noise);
}

at::Tensor ksample(const DiffusionModel& model, const Conditioning& positive,
                   const Conditioning& negative, const at::Tensor& latent,
                   const KSamplerParams& params, const SamplerHooks& hooks) {
  at::InferenceMode guard;
  at::Tensor sigmas = ksampler_sigmas(model.schedule, params);
  if (sigmas.numel() < 2) return latent;

  at::Tensor noise = params.add_noise ? comfy_initial_noise(latent.sizes().vec(), params.seed)
                                      : at::zeros_like(latent, at::kFloat);
  at::Tensor start = latent.to(at::kFloat);
  if (at::count_nonzero(start).item<int64_t>() > 0) start = start * model.latent_scale;
  at::Tensor x = noise_latent(start, noise, sigmas[0].item<double>(), model.schedule.sigma_max());
  x = x.to(model.placement.device);

  Denoiser denoise = make_guided_denoiser(model, positive, negative, params.cfg,
                                          latent.size(2) * 8, latent.size(3) * 8);
  at::Tensor out = run_sampler(params.sampler, denoise, x, sigmas.to(x.device()), params.seed, hooks);
  return (out / model.latent_scale).cpu();
}

}  // namespace df::engine
