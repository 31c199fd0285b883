// The extra UNet inputs of inpainting and InstructPix2Pix models (ComfyUI's c_concat), built from
// a conditioning entry or, without one, from the latent being sampled.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "engine/text_conditioning.h"

namespace df::engine {

// What an inpainting model reads where a conditioning carries no concat inputs: the latent being
// sampled (unscaled) and its noise mask (any size; undefined when the latent has none).
struct ConcatFallback {
  at::Tensor latent;
  at::Tensor noise_mask;
};

// The channels the model reads after the noisy latent, as parts concatenated in order, each
// [n, c, height, width] float32 for its own batch n (see resize_to_batch); empty for a model
// without extra inputs. Inpainting: ComfyUI's mask (the entry's concat_mask, else the fallback's
// noise mask; resized to the latent and rounded) and masked image (the entry's
// concat_latent_image, else the fallback latent, in the sampler's space); without any mask, ones
// and the latent of a black image. InstructPix2Pix: the entry's concat_latent_image as encoded
// (unscaled), else zeros. Images of another size are resized (bilinear,
// centre crop). Throws Error(kInvalidArgument) for an image with the wrong channel count.
std::vector<at::Tensor> concat_inputs(const DiffusionModel& model, const Conditioning& cond,
                                      const ConcatFallback& fallback, int64_t height,
                                      int64_t width);

// ComfyUI's resize_to_batch_size: `batch` entries picked evenly from the tensor's batch.
at::Tensor resize_to_batch(const at::Tensor& tensor, int64_t batch);

}  // namespace df::engine
