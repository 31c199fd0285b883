// Upscaling images tile by tile with feathered seams (ComfyUI's comfy.utils.tiled_scale), and
// ImageUpscaleWithModel's retry with smaller tiles when the device runs out of memory.
#pragma once

#include <cstdint>
#include <functional>

#include <ATen/ATen.h>

#include "engine/upscale/upscale_model.h"

namespace df::engine::upscale {

// Upscales one tile [1, C, h, w] -> [1, out_channels, scale·h, scale·w] (any device).
using TileFunction = std::function<at::Tensor(const at::Tensor& tile)>;

struct TileLayout {
  int64_t tile = 512;    // tile width and height in input pixels
  int64_t overlap = 32;  // input pixels shared by neighbouring tiles
  int scale = 4;
  int64_t out_channels = 3;
};

// samples [B, C, H, W] -> [B, out_channels, scale·H, scale·W] float32 on the CPU. An image that
// fits one tile is upscaled whole; otherwise tiles start every tile - overlap pixels (the last
// ones may be smaller) and each output tile is weighted by a ramp over its scale·overlap border
// pixels, the weighted sum divided by the summed weights.
at::Tensor tiled_scale(const at::Tensor& samples, const TileFunction& upscale_tile,
                       const TileLayout& layout);

// ImageUpscaleWithModel's loop: tiles of 512 with an overlap of 32; on c10::OutOfMemoryError the
// tile size halves and the whole image starts again, and the error is rethrown once the tile
// would fall under 128. Output as tiled_scale's.
at::Tensor upscale_with_tile_fallback(const at::Tensor& samples, const TileFunction& upscale_tile,
                                      int scale, int64_t out_channels);

// ImageUpscaleWithModel: IMAGE pixels [B, H, W, C] (C the model's input channels, else
// Error(kInvalidArgument)) -> [B, scale·H, scale·W, C_out] float32 on the CPU, clamped to [0, 1].
at::Tensor upscale_image_with_model(const UpscaleModel& model, const at::Tensor& pixels);

}  // namespace df::engine::upscale
