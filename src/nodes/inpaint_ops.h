// ComfyUI's conditioning node operations for inpainting and InstructPix2Pix models:
// InpaintModelConditioning and InstructPixToPixConditioning.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "nodes/node_values.h"

namespace df::nodes {

// What InpaintModelConditioning puts in each conditioning entry and its latent.
struct InpaintConditioning {
  at::Tensor concat_latent_image;  // the pixels with the masked ones grey 0.5, encoded
  at::Tensor concat_mask;          // [N,1,H,W]: the mask resized (bilinear) and cropped like them
  LatentValue latent;              // the whole image encoded; the concat mask as its noise mask
                                   // when `noise_mask`
};
// The mask is resized to the pixels, both are cropped (centred) to whole 8-pixel cells, and the
// pixels where the rounded mask is 1 are set to 0.5 before encoding. Throws
// Error(kInvalidArgument) for images smaller than a cell, or a mask that is not [H,W] / [N,H,W]
// with N 1 or the image batch.
InpaintConditioning inpaint_model_conditioning(const engine::VaeCodec& vae,
                                               const at::Tensor& pixels, const at::Tensor& mask,
                                               bool noise_mask);

// What InstructPixToPixConditioning puts in each entry (the pixels cropped to whole 8-pixel
// cells, encoded) and its latent (zeros of that shape).
struct InstructPix2PixConditioning {
  at::Tensor concat_latent_image;
  LatentValue latent;
};
InstructPix2PixConditioning instruct_pix2pix_conditioning(const engine::VaeCodec& vae,
                                                          const at::Tensor& pixels);

}  // namespace df::nodes
