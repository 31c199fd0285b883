// ComfyUI's custom sampling: guided sampling along given sigmas and the dual-CFG guider.
#include "engine/custom_sampling.h"

#include <cmath>
#include <optional>

#include "core/error.h"
#include "engine/guidance/cfg.h"
#include "engine/inpaint_mask.h"
#include "engine/ksampler.h"
#include "engine/noise.h"

namespace df::engine {
namespace {

bool is_one(double cfg) { return std::abs(cfg - 1.0) <= 1e-9; }

void check_inputs(const at::Tensor& sigmas, const at::Tensor& latent, const at::Tensor& noise) {
  if (sigmas.dim() != 1) {
    throw Error(ErrorCode::kInvalidArgument, "sigmas must be a 1-D list of noise levels");
  }
  if (!noise.sizes().equals(latent.sizes())) {
    throw Error(ErrorCode::kInvalidArgument, "the noise is not shaped like the latent");
  }
}

// Hooks that also keep the latest denoised estimate in `last`.
SamplerHooks keeping_denoised(const SamplerHooks& hooks, at::Tensor& last) {
  SamplerHooks kept = hooks;
  kept.on_denoised = [&hooks, &last](const at::Tensor& denoised) {
    last = denoised;
    if (hooks.on_denoised) hooks.on_denoised(denoised);
  };
  return kept;
}

// Entries marked as a negative prompt (ComfyUI's prompt_type "negative"): only the SDXL refiner
// reads it, as its default aesthetic score.
ConditioningList as_negative_prompt(const DiffusionModel& model, ConditioningList entries) {
  if (!model.requires_aesthetics_score) return entries;
  for (Conditioning& entry : entries) {
    if (!entry.aesthetic_score) entry.aesthetic_score = 2.5;
  }
  return entries;
}

// One conditioning list's prediction (its entries' weighted average), or none when skipped.
std::optional<Denoiser> side_denoiser(const DiffusionModel& model, const ConditioningList& entries,
                                      bool computed, int64_t height, int64_t width,
                                      const ConcatFallback& fallback, uint64_t seed) {
  if (!computed) return std::nullopt;
  return make_guided_denoiser(model, entries, {}, 1.0, height, width, TimestepMapping::kNearest,
                              fallback, seed);
}

// A side's prediction for x at sigma; zeros for a side left uncomputed (as ComfyUI's empty cond).
at::Tensor predict(const std::optional<Denoiser>& side, const at::Tensor& x, double sigma) {
  return side ? (*side)(x, sigma) : at::zeros_like(x, at::kFloat);
}

}  // namespace

CustomSampleResult sample_custom(const DiffusionModel& model, const Denoiser& denoise,
                                 const std::string& sampler, const at::Tensor& sigmas,
                                 const at::Tensor& latent, const at::Tensor& noise,
                                 uint64_t noise_seed, const SamplerHooks& hooks,
                                 const at::Tensor& noise_mask) {
  at::InferenceMode guard;
  check_inputs(sigmas, latent, noise);
  if (sigmas.numel() == 0) return {latent, {}};
  const at::Tensor steps = sigmas.to(at::kFloat);
  at::Tensor start = latent.to(at::kFloat);
  if (at::count_nonzero(start).item<int64_t>() > 0) start = latent_to_sampler(model, start);
  at::Tensor x = noise_latent(model.schedule, start, noise, steps[0].item<double>());
  x = x.to(model.placement.device);

  at::Tensor last_denoised;
  SamplerHooks kept = keeping_denoised(hooks, last_denoised);
  kept.model_sampling = &model.schedule;
  const Denoiser inpainting =
      noise_mask.defined()
          ? masked_denoiser(model, denoise,
                            prepare_noise_mask(noise_mask, latent.sizes()).to(x.device()),
                            start.to(x.device()), noise.to(x.device(), at::kFloat),
                            steps.to(x.device()))
          : denoise;
  at::Tensor out = run_sampler(sampler, inpainting, x, steps.to(x.device()), noise_seed, kept);
  out = unscale_noise(model.schedule, out, steps[-1].item<double>());
  CustomSampleResult result{latent_from_sampler(model, out).cpu(), {}};
  if (last_denoised.defined()) result.denoised = latent_from_sampler(model, last_denoised).cpu();
  return result;
}

Denoiser make_dual_cfg_denoiser(const DiffusionModel& model, const ConditioningList& cond1,
                                const ConditioningList& cond2, const ConditioningList& negative,
                                double cfg_conds, double cfg_cond2_negative, bool nested,
                                int64_t pixel_height, int64_t pixel_width,
                                const ConcatFallback& fallback, uint64_t seed) {
  const bool skip_negative = !nested && is_one(cfg_cond2_negative);
  const bool skip_middle = skip_negative && is_one(cfg_conds);
  const auto positive_side =
      side_denoiser(model, cond1, true, pixel_height, pixel_width, fallback, seed);
  const auto middle_side = side_denoiser(model, as_negative_prompt(model, cond2), !skip_middle,
                                         pixel_height, pixel_width, fallback, seed);
  const auto negative_side = side_denoiser(model, as_negative_prompt(model, negative),
                                           !skip_negative, pixel_height, pixel_width, fallback,
                                           seed);

  return [&model, positive_side, middle_side, negative_side, cfg_conds, cfg_cond2_negative,
          nested](const at::Tensor& x, double sigma) {
    at::InferenceMode guard;
    const at::Tensor positive = predict(positive_side, x, sigma);
    const at::Tensor middle = predict(middle_side, x, sigma);
    const at::Tensor negative = predict(negative_side, x, sigma);
    if (nested) {
      const at::Tensor text = apply_guidance(model, {positive, middle, cfg_conds, x, sigma});
      return negative + (text - negative) * cfg_cond2_negative;
    }
    return apply_guidance(model, {middle, negative, cfg_cond2_negative, x, sigma}) +
           (positive - middle) * cfg_conds;
  };
}

}  // namespace df::engine
