// Kohya's Deep Shrink (ComfyUI's PatchModelAddDownscale node): one input block's output shrunk
// during the early (noisiest) steps, the decoder's hidden state resized back to each skip's size.
#pragma once

#include <cstdint>
#include <functional>

#include <ATen/ATen.h>

#include "engine/unet.h"

namespace df::engine {

// Resizes [B,C,h,w] features to width x height cells.
using FeatureResize =
    std::function<at::Tensor(const at::Tensor& features, int64_t width, int64_t height)>;

struct DeepShrinkOptions {
  int64_t block_number = 3;  // the input block whose output is shrunk
  double downscale_factor = 2.0;
  double sigma_start = 0.0;  // shrinking while sigma_end <= sigma <= sigma_start
  double sigma_end = 0.0;
  bool after_skip = true;  // shrink after the block's output is kept as its skip (else before)
};

// The shrunk size of one side: Python's round(size * (1 / factor)), at least 1.
int64_t shrunk_size(int64_t size, double downscale_factor);

// An input block patch (before or after the skip) shrinking block `block_number`'s output by
// `downscale` to shrunk_size of each side while the sigma is in range, and an output block patch
// resizing the hidden state by `upscale` to the skip's size where their heights differ.
UNetPatches deep_shrink_patches(const DeepShrinkOptions& options, FeatureResize downscale,
                                FeatureResize upscale);

}  // namespace df::engine
