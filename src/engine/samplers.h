// k-diffusion samplers with ComfyUI's semantics: they walk a descending sigma sequence in VE space
// (x = x0 + sigma * noise), asking a denoiser for x0 at each sigma.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace df::engine {

// euler euler_ancestral heun dpm_2 dpm_2_ancestral dpmpp_sde dpmpp_2m dpmpp_2m_sde lcm ddim
// uni_pc uni_pc_bh2 (ComfyUI's names; ddim runs Euler steps, as in ComfyUI).
const std::vector<std::string>& sampler_names();

// True for the samplers ComfyUI schedules with one extra step whose penultimate sigma it drops
// (dpm_2, dpm_2_ancestral, uni_pc, uni_pc_bh2).
bool sampler_drops_penultimate_sigma(const std::string& sampler);

// Returns the denoised estimate x0 of `x` at noise level `sigma`.
using Denoiser = std::function<at::Tensor(const at::Tensor& x, double sigma)>;

struct SamplerHooks {
  std::function<void(int step, int total)> on_step;  // after each step: step = 1..total
  std::function<bool()> should_cancel;               // before each step; true -> Error(kCanceled)
  // After each step, with the latest denoised estimate x0 (in the sampler's latent space).
  std::function<void(const at::Tensor& denoised)> on_denoised;
};

// Runs `sampler` from x (already noised to sigmas[0]) down the sigmas and returns the result in
// x's dtype and device. The stochastic samplers draw their noise like ComfyUI's default noise
// sampler on CPU: a fresh CPU generator seeded with noise_seed + 1, one float32 standard normal
// draw of x's shape per use, moved to x's device, so CPU and GPU runs get the same noise. With
// fewer than two sigmas x is returned unchanged. Throws Error(kInvalidArgument) for an unknown
// sampler or sigmas that are not positive (a final 0 aside), Error(kCanceled) when canceled.
at::Tensor run_sampler(const std::string& sampler, const Denoiser& denoise, at::Tensor x,
                       const at::Tensor& sigmas, uint64_t noise_seed, const SamplerHooks& hooks);

}  // namespace df::engine
