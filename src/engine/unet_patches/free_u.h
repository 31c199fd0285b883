// FreeU (ComfyUI's FreeU and FreeU_V2 nodes): the UNet decoder's backbone features amplified and
// the low frequencies of its skip features damped, at the two widest decoder levels.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

#include "engine/unet.h"

namespace df::engine {

// The skip features with their centred (2*threshold)^2 lowest 2-D frequencies (after an fftshift
// over the last two axes; the window's edges follow Python slice rules) multiplied by `scale`;
// computed in float32, returned in x's dtype.
at::Tensor fourier_filter(const at::Tensor& x, int64_t threshold, double scale);

// FreeU: the first half of the channels of `h` times `factor`.
at::Tensor scale_backbone(const at::Tensor& h, double factor);
// FreeU_V2: the first half of the channels times (factor - 1) * m + 1, where m is the channel
// mean of `h` min-max normalised over each image.
at::Tensor scale_backbone_by_mean(const at::Tensor& h, double factor);

enum class FreeUVersion { kV1, kV2 };
struct FreeUFactors {
  double b1, b2, s1, s2;
};

// An output block patch: where the hidden state has model_channels * 4 channels, backbone factor
// b1 and skip scale s1; where it has model_channels * 2, b2 and s2; elsewhere nothing.
UNetPatches free_u_patches(int64_t model_channels, FreeUFactors factors, FreeUVersion version);

}  // namespace df::engine
