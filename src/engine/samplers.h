// k-diffusion samplers with ComfyUI's semantics: they walk a descending sigma sequence in VE space
// (x = x0 + sigma * noise), asking a denoiser for x0 at each sigma.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace df::engine {

class NoiseSchedule;

// The samplers the engine runs, under ComfyUI's names and in the order of ComfyUI's
// KSampler.SAMPLERS (of which er_sde, seeds_2/3 and sa_solver(_pece) are not implemented). ddim runs Euler steps, as in ComfyUI.
const std::vector<std::string>& sampler_names();

// True for the samplers ComfyUI schedules with one extra step whose penultimate sigma it drops
// (dpm_2, dpm_2_ancestral, uni_pc, uni_pc_bh2).
bool sampler_drops_penultimate_sigma(const std::string& sampler);

// Returns the denoised estimate x0 of `x` at noise level `sigma`.
using Denoiser = std::function<at::Tensor(const at::Tensor& x, double sigma)>;

// Called by a guided denoiser during its call with the unconditional denoised estimate it
// combined (ComfyUI's post-CFG "uncond_denoised"); the CFG++ samplers (*_cfg_pp) step along it.
// A denoiser that reports nothing is taken to be unguided: its result is its own unconditional
// estimate. Outside a sampler's denoiser call this does nothing.
void report_uncond_denoised(const at::Tensor& uncond);

struct SamplerHooks {
  std::function<void(int step, int total)> on_step;  // after each step: step = 1..total
  std::function<bool()> should_cancel;               // before each step; true -> Error(kCanceled)
  // After each step, with the latest denoised estimate x0 (in the sampler's latent space).
  std::function<void(const at::Tensor& denoised)> on_denoised;
  // The model's sampling (ComfyUI's model_sampling), when known. A flow schedule (ComfyUI's CONST)
  // switches the samplers that branch on it to their rectified-flow forms: the ancestral ones to
  // ComfyUI's *_RF steps, the SDE and exponential ones to the flow's half log-SNR and signal scale
  // 1 - sigma, lcm to the flow's noise scaling. Unset means a VE (x0 + sigma * noise) model.
  const NoiseSchedule* model_sampling = nullptr;
};

// Runs `sampler` from x (already noised to sigmas[0]) down the sigmas and returns the result in
// x's dtype and device. Per-step noise is drawn as ComfyUI draws it:
// - ancestral and other stochastic samplers (default_noise_sampler): one standard normal draw of
//   x's shape and dtype per use from a generator on x's device, seeded with noise_seed + 1 on the
//   CPU and with noise_seed itself on CUDA (as ComfyUI, whose CPU and GPU runs therefore differ);
// - dpmpp_sde, dpmpp_2m_sde(_heun), dpmpp_3m_sde: a torchsde Brownian tree seeded with
//   noise_seed over [smallest nonzero sigma, largest sigma], kept on the CPU (its increments are
//   moved to x's device); their _gpu variants keep the tree on x's device.
// With fewer than two sigmas x is returned unchanged. Throws Error(kInvalidArgument) for an
// unknown sampler or sigmas that are not positive (a final 0 aside), Error(kCanceled) when
// canceled.
at::Tensor run_sampler(const std::string& sampler, const Denoiser& denoise, at::Tensor x,
                       const at::Tensor& sigmas, uint64_t noise_seed, const SamplerHooks& hooks);

}  // namespace df::engine
