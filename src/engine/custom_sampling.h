// ComfyUI's custom sampling: a latent sampled along given sigmas with given noise and a guided
// denoiser (SamplerCustom, SamplerCustomAdvanced), and the dual-CFG guider.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "engine/concat_conditioning.h"
#include "engine/samplers.h"
#include "engine/text_conditioning.h"

namespace df::engine {

struct CustomSampleResult {
  at::Tensor samples;   // unscaled latents, float32 on the CPU
  at::Tensor denoised;  // the last step's x0 estimate, unscaled; undefined when no step ran
};

// ComfyUI's guider sample. Empty `sigmas` return `latent` unchanged. Otherwise the latent
// (unscaled, [B,C,h,w]; multiplied by the model's latent scale unless it is all zeros) is noised
// to sigmas[0] with `noise` (ComfyUI's start rule, see noise.h noise_latent), sampled with
// `sampler` down the sigmas (`noise_seed` seeds its per-step noise) and scaled back; one sigma
// gives the noised latent. With a `noise_mask` (the LATENT's, any size) the masked-out cells keep
// the latent (engine/inpaint_mask.h). Throws Error(kInvalidArgument) for sigmas that are not 1-D, noise not
// shaped like the latent, or an unknown sampler; Error(kCanceled) when the hooks cancel.
CustomSampleResult sample_custom(const DiffusionModel& model, const Denoiser& denoise,
                                 const std::string& sampler, const at::Tensor& sigmas,
                                 const at::Tensor& latent, const at::Tensor& noise,
                                 uint64_t noise_seed, const SamplerHooks& hooks,
                                 const at::Tensor& noise_mask = {});

// DualCFGGuider: cond1, cond2 (treated as a negative prompt, as ComfyUI marks it) and negative.
// regular: guidance(cond2 over negative, cfg_cond2_negative) + (cond1 - cond2) * cfg_conds, with
// negative (and, when cfg_conds is 1 too, cond2) left uncomputed as zeros when
// cfg_cond2_negative is 1; nested: negative + (guidance(cond1 over cond2, cfg_conds) - negative)
// * cfg_cond2_negative. `fallback` and `seed` as make_guided_denoiser's.
Denoiser make_dual_cfg_denoiser(const DiffusionModel& model, const ConditioningList& cond1,
                                const ConditioningList& cond2, const ConditioningList& negative,
                                double cfg_conds, double cfg_cond2_negative, bool nested,
                                int64_t pixel_height, int64_t pixel_width,
                                const ConcatFallback& fallback = {}, uint64_t seed = 0);

}  // namespace df::engine
