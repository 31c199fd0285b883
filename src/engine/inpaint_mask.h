// Sampling with a latent noise mask (ComfyUI's KSamplerX0Inpaint): where the mask is 0 the latent
// is kept, noised to each step's sigma on the way in and restored in the model's estimate.
#pragma once

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "engine/samplers.h"

namespace df::engine {

// ComfyUI's prepare_mask: a [N,H,W] or [N,1,H,W] mask resized (bilinear) to the latent's cells,
// repeated over its channels and to its batch. Throws Error(kInvalidArgument) for other ranks.
at::Tensor prepare_noise_mask(const at::Tensor& mask, at::IntArrayRef latent_shape);

// `denoise` with the inpainting rule: the input is x * m + noised latent * (1 - m), the latent
// noised by the model's noise scaling (latent + noise * sigma, for flows
// (1 - sigma) * latent + noise * sigma), and the estimate out * m + latent * (1 - m), m being the
// mask (through the model's denoise_mask_function when it has one). `latent` is in the sampler's space; `sigmas` are the
// run's. Tensors must be on x's device.
Denoiser masked_denoiser(const DiffusionModel& model, Denoiser denoise, at::Tensor mask,
                         at::Tensor latent, at::Tensor noise, at::Tensor sigmas);

// DifferentialDiffusion's mask function: each step keeps the cells whose mask value reaches the
// step's place between the run's first and last timestep (1 at the start, 0 at the end).
DenoiseMaskFunction differential_diffusion();

}  // namespace df::engine
