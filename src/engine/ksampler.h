// KSampler / KSamplerAdvanced semantics: noise, sigma selection, classifier-free guidance, sampling.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "engine/concat_conditioning.h"
#include "engine/samplers.h"
#include "engine/text_conditioning.h"

namespace df::engine {

struct KSamplerParams {
  uint64_t seed = 0;
  int steps = 20;
  double cfg = 8.0;
  std::string sampler = "euler";
  std::string scheduler = "normal";
  double denoise = 1.0;
  // KSamplerAdvanced controls (the plain KSampler uses the defaults).
  bool add_noise = true;
  int start_at_step = 0;
  int end_at_step = 10000;
  bool return_with_leftover_noise = false;
  // Which seeded noise each latent takes (LatentFromBatch); empty: 0..B-1.
  std::vector<int> batch_index = {};
  // The latent's inpainting mask (SetLatentNoiseMask); undefined: every cell is sampled.
  at::Tensor noise_mask = {};
};

// Sigmas the sampler walks for these parameters (KSampler's denoise rule, or the advanced slice).
at::Tensor ksampler_sigmas(const NoiseSchedule& schedule, const KSamplerParams& params);

// Denoises `latent` (unscaled, [B,4,h,w]) and returns the unscaled result, as ComfyUI's KSampler.
at::Tensor ksample(const DiffusionModel& model, const ConditioningList& positive,
                   const ConditioningList& negative, const at::Tensor& latent,
                   const KSamplerParams& params, const SamplerHooks& hooks);

// Which timestep the UNet sees for a sigma: ComfyUI's nearest table index, or diffusers'
// log-linear interpolation (fractional). They differ only between table entries (dpm_2's
// midpoints, karras sigmas).
enum class TimestepMapping { kNearest, kInterpolated };

// The model call wrapped as a denoiser, as ComfyUI's CFGGuider: input scaling, timestep and
// prediction type; each side's prediction is the average of its entries' predictions weighted by
// their areas, masks and strengths (entries outside their step range left out; entries sharing a
// rectangle and compatible token lengths share one UNet call); then CFG (or the model's CFG hook)
// and its post-CFG hooks. With cfg 1 the negative side is not computed. Inpainting and
// InstructPix2Pix models read their extra inputs from each entry (concat_conditioning.h), an
// inpainting model's entry without them from `fallback` (the latent being sampled).
// `seed` is the sampler's: unCLIP image conditioning draws its augmentation noise from seed - 10.
Denoiser make_guided_denoiser(const DiffusionModel& model, const ConditioningList& positive,
                              const ConditioningList& negative, double cfg, int64_t pixel_height,
                              int64_t pixel_width,
                              TimestepMapping mapping = TimestepMapping::kNearest,
                              const ConcatFallback& fallback = {}, uint64_t seed = 0);

}  // namespace df::engine
