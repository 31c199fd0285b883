// ComfyUI's image operations on IMAGE tensors ([B,H,W,3] float in [0,1]); tensors in, tensors out.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "image/image8.h"

namespace df::nodes {

// ImageScaleBy's target size: each side times `scale_by`, rounded like Python's round().
struct PixelSize {
  int64_t width;
  int64_t height;
};
PixelSize scaled_size(const at::Tensor& pixels, double scale_by);
// ImageScaleToTotalPixels' target size: the aspect ratio kept, int(megapixels * 2^20) pixels.
PixelSize total_pixels_size(const at::Tensor& pixels, double megapixels);

// 1 - x.
at::Tensor invert_image(const at::Tensor& pixels);

// ImageBlur: a (2r+1)^2 gaussian over a [-1,1] grid with `sigma`, reflect-padded borders.
at::Tensor blur_image(const at::Tensor& pixels, int64_t radius, double sigma);
// ImageSharpen: the gaussian scaled by -10*alpha with its centre raised so it sums to 1,
// reflect-padded borders, clamped to [0,1].
at::Tensor sharpen_image(const at::Tensor& pixels, int64_t radius, double sigma, double alpha);

// ImageBlend: image2 (resized bicubic with centre crop when its shape differs) blended into image1
// by `mode` (normal, multiply, screen, overlay, soft_light, difference), mixed by `factor`,
// clamped to [0,1].
at::Tensor blend_images(const at::Tensor& image1, const at::Tensor& image2, double factor,
                        const std::string& mode);

// ImageBatch: image2 resized (bilinear, centre crop) to image1's size when it differs, appended.
at::Tensor batch_images(const at::Tensor& image1, const at::Tensor& image2);

// EmptyImage: a batch filled with the 0xRRGGBB `color`.
at::Tensor empty_image(int64_t width, int64_t height, int64_t batch, int64_t color);

// ImageCrop: x and y limited to the last column and row, the size to what is left.
at::Tensor crop_image(const at::Tensor& pixels, int64_t width, int64_t height, int64_t x, int64_t y);

// ImagePadForOutpaint: the image on a grey (0.5) canvas grown by the margins, and a [1,H,W] mask
// that is 1 on the new area and, inside the image, (1 - d/feathering)^2 within `feathering`
// pixels of a padded side (only when 2 * feathering is below both image sides).
struct PaddedImage {
  at::Tensor pixels;
  at::Tensor mask;
};
PaddedImage pad_for_outpaint(const at::Tensor& pixels, int64_t left, int64_t top, int64_t right,
                             int64_t bottom, int64_t feathering);

// ImageCompositeMasked: `source` (optionally resized to the destination, bilinear) pasted at
// (x, y) through `mask` (undefined: all ones; resized bilinear to the source, batch repeated),
// source and mask batches repeated or cut to the destination's.
at::Tensor composite_images(const at::Tensor& destination, const at::Tensor& source, int64_t x,
                            int64_t y, bool resize_source, const at::Tensor& mask);

// Canny: kornia's edge detector as ComfyUI calls it (grayscale, 5x5 gaussian with sigma 1,
// Sobel, non-maximum suppression, hysteresis between the thresholds); edges as a 3-channel image.
at::Tensor canny_edges(const at::Tensor& pixels, double low_threshold, double high_threshold);

// ImageToMask: one of the channels "red", "green", "blue" (IMAGE has no "alpha").
at::Tensor image_channel_mask(const at::Tensor& pixels, const std::string& channel);
// MaskToImage: any mask ([H,W] or [B,H,W]) as a gray [B,H,W,3] image.
at::Tensor mask_to_image(const at::Tensor& mask);
// LoadImageMask: channel "alpha" (as 1 - alpha, so 0 where opaque and for images without alpha),
// "red", "green" or "blue" of an 8-bit image, as a [1,H,W] mask.
at::Tensor image8_channel_mask(const Image8& image, const std::string& channel);

}  // namespace df::nodes
