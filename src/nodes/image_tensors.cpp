// IMAGE tensor conversions and ComfyUI-compatible image scaling (incl. a Lanczos-3 resampler).
#include "nodes/image_tensors.h"

#include <cmath>

#include "core/error.h"

namespace df::nodes {
namespace {

// Lanczos-3 resampling of [B,C,H,W] along one axis (dim 2 or 3), with the filter widened when
// shrinking, as image libraries do.
at::Tensor lanczos_axis(const at::Tensor& x, int64_t dim, int64_t out_size) {
  const int64_t in_size = x.size(dim);
  if (in_size == out_size) return x;
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double support = 3.0 * std::max(scale, 1.0);
  const double filter_scale = std::max(scale, 1.0);
  at::Tensor weights = at::zeros({out_size, in_size}, at::kDouble);
  auto w = weights.accessor<double, 2>();
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(center - support)));
    const int64_t hi = std::min<int64_t>(in_size, static_cast<int64_t>(std::ceil(center + support)));
    double total = 0.0;
    for (int64_t i = lo; i < hi; ++i) {
      const double t = (static_cast<double>(i) + 0.5 - center) / filter_scale;
      double value = 0.0;
      if (t == 0.0) {
        value = 1.0;
      } else if (std::abs(t) < 3.0) {
        const double pt = M_PI * t;
        value = 3.0 * std::sin(pt) * std::sin(pt / 3.0) / (pt * pt);
      }
      w[o][i] = value;
      total += value;
    }
    if (total != 0.0) {
      for (int64_t i = lo; i < hi; ++i) w[o][i] /= total;
    }
  }
  at::Tensor moved = x.to(at::kDouble).movedim(dim, -1);
  return at::matmul(moved, weights.t()).movedim(-1, dim).to(x.scalar_type());
}

}  // namespace

at::Tensor center_crop_to_aspect(const at::Tensor& nchw, int64_t width, int64_t height) {
  const int64_t h = nchw.size(2), w = nchw.size(3);
  const double old_aspect = static_cast<double>(w) / static_cast<double>(h);
  const double new_aspect = static_cast<double>(width) / static_cast<double>(height);
  // The margins are rounded like Python's round(): ties to even.
  if (old_aspect > new_aspect) {
    const int64_t x = static_cast<int64_t>(std::nearbyint((w - w * (new_aspect / old_aspect)) / 2));
    return nchw.narrow(3, x, w - 2 * x);
  }
  if (old_aspect < new_aspect) {
    const int64_t y = static_cast<int64_t>(std::nearbyint((h - h * (old_aspect / new_aspect)) / 2));
    return nchw.narrow(2, y, h - 2 * y);
  }
  return nchw;
}

Image8 to_image8(const at::Tensor& pixels, int64_t index) {
  at::Tensor one = (pixels[index].to(at::kFloat) * 255.0).clamp(0.0, 255.0).to(at::kByte).contiguous();
  Image8 image;
  image.height = static_cast<int>(one.size(0));
  image.width = static_cast<int>(one.size(1));
  image.channels = static_cast<int>(one.size(2));
  image.pixels.assign(one.data_ptr<uint8_t>(), one.data_ptr<uint8_t>() + one.numel());
  return image;
}

DecodedImage from_image8(const Image8& image) {
  at::Tensor raw = at::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                 {image.height, image.width, image.channels}, at::kByte)
                       .to(at::kFloat)
                       .div(255.0);
  DecodedImage out;
  out.pixels = raw.narrow(2, 0, 3).unsqueeze(0).contiguous();
  out.mask = image.channels == 4 ? (1.0 - raw.select(2, 3)).unsqueeze(0).contiguous()
                                 : at::zeros({1, 64, 64}, at::kFloat);
  return out;
}

at::Tensor scale_images(const at::Tensor& pixels, const std::string& method, int64_t width,
                        int64_t height, const std::string& crop) {
  const int64_t in_h = pixels.size(1), in_w = pixels.size(2);
  if (width == 0 && height == 0) return pixels;
  // Python's round(): ties to even (the default floating-point rounding mode).
  if (width == 0) width = std::max<int64_t>(1, std::llrint(double(in_w * height) / double(in_h)));
  if (height == 0) height = std::max<int64_t>(1, std::llrint(double(in_h * width) / double(in_w)));
  at::Tensor nchw = pixels.permute({0, 3, 1, 2});
  if (crop == "center") {
    nchw = center_crop_to_aspect(nchw, width, height);
  } else if (crop != "disabled") {
    throw Error(ErrorCode::kInvalidArgument, "unknown crop '" + crop + "'");
  }
  at::Tensor out;
  const std::vector<int64_t> size = {height, width};
  if (method == "nearest-exact") {
    out = at::_upsample_nearest_exact2d(nchw.contiguous(), size, std::nullopt, std::nullopt);
  } else if (method == "bilinear") {
    out = at::upsample_bilinear2d(nchw.contiguous(), size, false);
  } else if (method == "bicubic") {
    out = at::upsample_bicubic2d(nchw.contiguous(), size, false);
  } else if (method == "area") {
    out = at::adaptive_avg_pool2d(nchw.contiguous(), size);
  } else if (method == "lanczos") {
    // Clipped after each pass, like the 8-bit passes of the image library ComfyUI resizes with.
    out = lanczos_axis(lanczos_axis(nchw, 3, width).clamp(0.0, 1.0), 2, height).clamp(0.0, 1.0);
  } else {
    throw Error(ErrorCode::kInvalidArgument, "unknown upscale method '" + method + "'");
  }
  return out.permute({0, 2, 3, 1}).contiguous();
}

}  // namespace df::nodes
