// Conversions between IMAGE tensors ([B,H,W,3] float in [0,1]) and 8-bit rasters, and resizing.
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "image/image8.h"

namespace df::nodes {

// One image of a batch to 8-bit RGB, truncating like ComfyUI's SaveImage (clip(x*255) -> uint8).
Image8 to_image8(const at::Tensor& pixels, int64_t index);

struct DecodedImage {
  at::Tensor pixels;  // [1,H,W,3]
  at::Tensor mask;    // [1,H,W]: 1 - alpha, or zeros [1,64,64] without alpha (ComfyUI's LoadImage)
};
DecodedImage from_image8(const Image8& image);

// ComfyUI's centre crop of [B,C,H,W] to the aspect ratio of width x height (margins rounded like
// Python's round()), done before resizing with crop "center".
at::Tensor center_crop_to_aspect(const at::Tensor& nchw, int64_t width, int64_t height);

// ComfyUI's ImageScale: optional centre crop to the target aspect ratio, then resize with
// nearest-exact, bilinear, area, bicubic or lanczos. A zero width or height keeps the aspect ratio.
at::Tensor scale_images(const at::Tensor& pixels, const std::string& method, int64_t width,
                        int64_t height, const std::string& crop);

}  // namespace df::nodes
