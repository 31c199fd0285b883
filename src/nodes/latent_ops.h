// ComfyUI's latent operations: resizing, compositing, blending, batch bookkeeping, tiled VAE coding.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "nodes/node_values.h"

namespace df::nodes {

// ComfyUI's common_upscale on latents [B,C,h,w] to width x height latent cells: an optional
// centre crop ("disabled" or "center") to the target aspect, then "nearest-exact", "bilinear",
// "area", "bicubic" or "bislerp". Unknown names throw Error(kInvalidArgument).
at::Tensor upscale_latents(const at::Tensor& samples, const std::string& method, int64_t width,
                           int64_t height, const std::string& crop);

// ComfyUI's bislerp: along the width then the height, each output cell is the spherical
// interpolation (over the channels) of the two source cells bilinear sampling would mix, its
// length interpolated linearly.
at::Tensor bislerp(const at::Tensor& samples, int64_t width, int64_t height);

// LatentUpscale: width and height in pixels (a zero side keeps the aspect ratio, both zero keep
// the latent; sides are at least 64), resized to a cell per 8 pixels. Mask and batch indices stay.
LatentValue upscale_latent(const LatentValue& latent, const std::string& method, int64_t width,
                           int64_t height, const std::string& crop);
// LatentUpscaleBy: each side times `scale` rounded like Python's round(), no crop.
LatentValue upscale_latent_by(const LatentValue& latent, const std::string& method, double scale);

// LatentComposite: `source` pasted into `destination` at (x, y) pixels (a cell per 8 pixels),
// its rows and columns within `feather` / 8 cells of an edge inside the destination faded in
// linearly: cell t from such an edge weighs (t + 1) / feather-cells.
at::Tensor composite_latents(const at::Tensor& destination, const at::Tensor& source, int64_t x,
                             int64_t y, int64_t feather);

// LatentCompositeMasked: `source` (optionally resized to the destination) pasted at (x, y) pixels
// through `mask` ([B,H,W] or [H,W] at any size, resized to the source; undefined: all ones).
at::Tensor composite_latents_masked(const at::Tensor& destination, const at::Tensor& source,
                                    int64_t x, int64_t y, bool resize_source,
                                    const at::Tensor& mask);

// LatentBlend (normal mode): samples1 * factor + samples2 * (1 - factor), samples2 first resized
// (bicubic, centre crop) when its shape differs.
at::Tensor blend_latents(const at::Tensor& samples1, const at::Tensor& samples2, double factor);

// RepeatLatentBatch: the batch `amount` times over; a mask of more than one entry repeats with it;
// batch indices continue past the span of the existing ones.
LatentValue repeat_latent_batch(const LatentValue& latent, int64_t amount);
// LatentFromBatch: `length` latents from `batch_index` (both limited to the batch), with their
// masks and batch indices (0..B-1 when the latent has none).
LatentValue latent_from_batch(const LatentValue& latent, int64_t batch_index, int64_t length);
// LatentBatch: `second` resized (bilinear, centre crop) to `first`'s size and appended; the batch
// indices of both (0..B-1 for one without) concatenated; `first`'s mask kept.
LatentValue batch_latents(const LatentValue& first, const LatentValue& second);

// One tile's result: [B,C',h*out/in,w*out/in] for a tile [B,C,h,w].
using TileFunction = std::function<at::Tensor(const at::Tensor&)>;

// How ComfyUI's tiled_scale cuts its input. Sizes count grid cells: a cell is `in_cell` input
// pixels and `out_cell` output pixels (decoding: 1 latent -> 8 pixels; encoding: 8 -> 1).
struct TileGrid {
  int64_t tile_height;
  int64_t tile_width;
  int64_t overlap;
  int64_t in_cell = 1;
  int64_t out_cell = 1;
};

// ComfyUI's tiled_scale: `run` on tiles stepping by tile - overlap (the last flush with the far
// edge), each result weighted by a mask that ramps over `overlap` cells at every side as
// (t + 1) / overlap, and the weighted sum divided by the summed weights. Input that fits one tile
// runs whole. Throws Error(kInvalidArgument) when a side needing several tiles has an
// overlap not smaller than its tiles.
at::Tensor tiled_apply(const at::Tensor& input, const TileFunction& run, const TileGrid& grid);

// VAEDecodeTiled: ComfyUI's three tilings of the latent (tile x tile, tile/2 wide x 2*tile tall,
// 2*tile wide x tile/2 tall; tile_size and overlap in pixels, the overlap cut to tile_size / 4
// when larger) decoded and averaged. `before_tile` runs before each tile (cancel checks).
at::Tensor decode_tiled(const engine::VaeCodec& vae, const at::Tensor& latents, int64_t tile_size,
                        int64_t overlap, const std::function<void()>& before_tile = {});
// VAEEncodeTiled: the image cropped to whole latent cells (centred), then the same three tilings
// in pixels encoded and averaged.
at::Tensor encode_tiled(const engine::VaeCodec& vae, const at::Tensor& pixels, int64_t tile_size,
                        int64_t overlap, const std::function<void()>& before_tile = {});

// VAEEncodeForInpaint's inputs: the pixels cropped (centred) to whole VAE cells with the masked
// ones set to grey 0.5, and the noise mask: the mask resized to the pixels (bilinear), rounded,
// grown by `grow_mask_by` pixels (a box filter, clamped to 1) and rounded again, [N,1,H,W].
struct InpaintEncodeInputs {
  at::Tensor pixels;      // [B,H,W,3]
  at::Tensor noise_mask;  // [N,1,H,W]
};
InpaintEncodeInputs inpaint_encode_inputs(const at::Tensor& pixels, const at::Tensor& mask,
                                          int64_t grow_mask_by, int64_t cell);

}  // namespace df::nodes
