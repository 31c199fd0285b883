// Tiled upscaling with feathered seams and the out-of-memory fallback to smaller tiles.
#include "engine/upscale/tiled_upscale.h"

#include <c10/util/Exception.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace df::engine::upscale {
namespace {

constexpr int64_t kFirstTile = 512;
constexpr int64_t kOverlap = 32;
constexpr int64_t kSmallestTile = 128;

// Where tiles start along a dimension of `size` pixels.
std::vector<int64_t> tile_starts(int64_t size, const TileLayout& layout) {
  if (size <= layout.tile) return {0};
  std::vector<int64_t> starts;
  for (int64_t start = 0; start < size - layout.overlap; start += layout.tile - layout.overlap) {
    starts.push_back(start);
  }
  return starts;
}

// The weight of each output pixel along one dimension of a tile: 1 inside, ramping (t + 1) /
// feather over the `feather` pixels at both ends (left alone when the tile is not longer).
at::Tensor feather_ramp(int64_t length, int64_t feather) {
  std::vector<float> weights(static_cast<size_t>(length), 1.0f);
  if (feather < length) {
    for (int64_t t = 0; t < feather; ++t) {
      const float a = static_cast<float>(t + 1) / static_cast<float>(feather);
      weights[static_cast<size_t>(t)] *= a;
      weights[static_cast<size_t>(length - 1 - t)] *= a;
    }
  }
  return at::tensor(weights, at::kFloat);
}

at::Tensor upscaled_on_cpu(const TileFunction& upscale_tile, const at::Tensor& tile) {
  return upscale_tile(tile).to(at::kCPU, at::kFloat);
}

at::Tensor tiled_image(const at::Tensor& image, const TileFunction& upscale_tile,
                       const TileLayout& layout) {
  const int64_t height = image.size(2), width = image.size(3);
  const int64_t scale = layout.scale;
  at::Tensor sum = at::zeros({1, layout.out_channels, height * scale, width * scale}, at::kFloat);
  at::Tensor weight_sum = at::zeros_like(sum);
  const int64_t feather = scale * layout.overlap;
  for (int64_t y : tile_starts(height, layout)) {
    for (int64_t x : tile_starts(width, layout)) {
      const at::Tensor tile = image.narrow(2, y, std::min(layout.tile, height - y))
                                  .narrow(3, x, std::min(layout.tile, width - x));
      const at::Tensor out = upscaled_on_cpu(upscale_tile, tile);
      const at::Tensor mask = feather_ramp(out.size(2), feather).unsqueeze(1) *
                              feather_ramp(out.size(3), feather).unsqueeze(0);
      const auto region = [&](at::Tensor& t) {
        return t.narrow(2, y * scale, out.size(2)).narrow(3, x * scale, out.size(3));
      };
      region(sum).add_(out * mask);
      region(weight_sum).add_(mask.expand_as(out));
    }
  }
  return sum / weight_sum;
}

}  // namespace

at::Tensor tiled_scale(const at::Tensor& samples, const TileFunction& upscale_tile,
                       const TileLayout& layout) {
  std::vector<at::Tensor> images;
  for (int64_t b = 0; b < samples.size(0); ++b) {
    const at::Tensor image = samples.narrow(0, b, 1);
    const bool fits = image.size(2) <= layout.tile && image.size(3) <= layout.tile;
    images.push_back(fits ? upscaled_on_cpu(upscale_tile, image)
                          : tiled_image(image, upscale_tile, layout));
  }
  return at::cat(images, 0);
}

at::Tensor upscale_with_tile_fallback(const at::Tensor& samples, const TileFunction& upscale_tile,
                                      int scale, int64_t out_channels) {
  TileLayout layout{kFirstTile, kOverlap, scale, out_channels};
  while (true) {
    try {
      return tiled_scale(samples, upscale_tile, layout);
    } catch (const c10::OutOfMemoryError&) {
      layout.tile /= 2;
      if (layout.tile < kSmallestTile) throw;
    }
  }
}

at::Tensor upscale_image_with_model(const UpscaleModel& model, const at::Tensor& pixels) {
  if (pixels.dim() != 4 || pixels.size(3) != model.input_channels) {
    throw Error(ErrorCode::kInvalidArgument,
                "ImageUpscaleWithModel: the image has " + std::to_string(pixels.size(-1)) +
                    " channels but the upscale model takes " +
                    std::to_string(model.input_channels));
  }
  const at::Tensor upscaled = upscale_with_tile_fallback(
      pixels.permute({0, 3, 1, 2}), [&](const at::Tensor& tile) { return model.upscale(tile); },
      model.scale, model.output_channels);
  return upscaled.permute({0, 2, 3, 1}).clamp(0.0, 1.0).contiguous();
}

}  // namespace df::engine::upscale
