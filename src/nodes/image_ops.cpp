// ComfyUI's image operations (scaling sizes, blur, sharpen, blend, batch, crop, pad, composite,
// Canny, channel masks) on ATen tensors.
#include "nodes/image_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "nodes/image_tensors.h"

namespace df::nodes {
namespace {

at::Tensor to_nchw(const at::Tensor& pixels) { return pixels.permute({0, 3, 1, 2}).contiguous(); }
at::Tensor to_nhwc(const at::Tensor& nchw) { return nchw.permute({0, 2, 3, 1}).contiguous(); }

int64_t python_round(double value) { return static_cast<int64_t>(std::nearbyint(value)); }

PixelSize checked_size(int64_t width, int64_t height) {
  if (width < 1 || height < 1) {
    throw Error(ErrorCode::kInvalidArgument, "the scaled image would be " + std::to_string(width) +
                                                 "x" + std::to_string(height) + " pixels");
  }
  return {width, height};
}

// ComfyUI's gaussian_kernel: exp(-d^2 / (2 sigma^2)) over a size x size grid spanning [-1, 1].
at::Tensor grid_gaussian_kernel(int64_t size, double sigma) {
  const at::Tensor axis = at::linspace(-1.0, 1.0, size, at::kFloat);
  const at::Tensor squared = axis.square().unsqueeze(1) + axis.square().unsqueeze(0);
  const at::Tensor kernel = at::exp(-squared / (2.0 * sigma * sigma));
  return kernel / kernel.sum();
}

// Each channel convolved with one 2-D kernel, the borders reflected by the kernel's radius.
// Reflected borders need an image wider and taller than the filter's radius.
void require_room_to_reflect(const at::Tensor& nchw, int64_t radius) {
  if (radius >= nchw.size(2) || radius >= nchw.size(3)) {
    throw Error(ErrorCode::kInvalidArgument,
                "a filter radius of " + std::to_string(radius) + " needs an image larger than " +
                    std::to_string(radius) + " pixels on each side");
  }
}

at::Tensor filter_reflected(const at::Tensor& nchw, const at::Tensor& kernel) {
  const int64_t radius = kernel.size(0) / 2;
  require_room_to_reflect(nchw, radius);
  const int64_t channels = nchw.size(1);
  const at::Tensor weight = kernel.to(nchw.scalar_type()).expand({channels, 1, -1, -1}).contiguous();
  const at::Tensor padded = at::reflection_pad2d(nchw, {radius, radius, radius, radius});
  const std::vector<int64_t> ones = {1, 1}, zeros = {0, 0};
  return at::conv2d(padded, weight, at::Tensor(), ones, zeros, ones, channels);
}

at::Tensor soft_light_curve(const at::Tensor& x) {
  return at::where(x <= 0.25, ((16.0 * x - 12.0) * x + 4.0) * x, at::sqrt(x));
}

at::Tensor blend_mode(const at::Tensor& a, const at::Tensor& b, const std::string& mode) {
  if (mode == "normal") return b;
  if (mode == "multiply") return a * b;
  if (mode == "screen") return 1.0 - (1.0 - a) * (1.0 - b);
  if (mode == "overlay") return at::where(a <= 0.5, 2.0 * a * b, 1.0 - 2.0 * (1.0 - a) * (1.0 - b));
  if (mode == "soft_light") {
    return at::where(b <= 0.5, a - (1.0 - 2.0 * b) * a * (1.0 - a),
                     a + (2.0 * b - 1.0) * (soft_light_curve(a) - a));
  }
  if (mode == "difference") return a - b;
  throw Error(ErrorCode::kInvalidArgument, "unknown blend_mode '" + mode + "'");
}

void require_broadcastable_batches(const at::Tensor& a, const at::Tensor& b, const char* what) {
  if (a.size(0) != b.size(0) && a.size(0) != 1 && b.size(0) != 1) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(what) + ": batches of " + std::to_string(a.size(0)) + " and " +
                    std::to_string(b.size(0)) + " images do not combine");
  }
}

// comfy.utils.repeat_to_batch_size: cut to `batch`, or repeated whole and then cut.
at::Tensor repeat_to_batch(const at::Tensor& t, int64_t batch) {
  const int64_t have = t.size(0);
  if (have > batch) return t.narrow(0, 0, batch);
  if (have == batch) return t;
  std::vector<int64_t> repeats(t.dim(), 1);
  repeats[0] = (batch + have - 1) / have;
  return t.repeat(repeats).narrow(0, 0, batch);
}

at::Tensor resize_bilinear(const at::Tensor& nchw, int64_t height, int64_t width) {
  return at::upsample_bilinear2d(nchw.contiguous(), {height, width}, false);
}

// The composite's mask as [B,1,h,w] for a source of h x w and a destination batch of B.
at::Tensor composite_mask(const at::Tensor& mask, const at::Tensor& source, int64_t batch) {
  if (!mask.defined()) return at::ones_like(source);
  const at::Tensor planes = mask.to(at::kFloat).reshape({-1, 1, mask.size(-2), mask.size(-1)});
  return repeat_to_batch(resize_bilinear(planes, source.size(2), source.size(3)), batch);
}

// Distance of each pixel to the nearest padded side ([d2,d3]; an unpadded side counts as far).
at::Tensor distance_to_padded_sides(int64_t height, int64_t width, bool top, bool bottom,
                                    bool left, bool right) {
  const at::Tensor rows = at::arange(height, at::kDouble).unsqueeze(1).expand({height, width});
  const at::Tensor cols = at::arange(width, at::kDouble).unsqueeze(0).expand({height, width});
  const at::Tensor far_rows = at::full_like(rows, static_cast<double>(height));
  const at::Tensor far_cols = at::full_like(cols, static_cast<double>(width));
  at::Tensor distance = top ? rows : far_rows;
  distance = at::minimum(distance, bottom ? far_rows - rows : far_rows);
  distance = at::minimum(distance, left ? cols : far_cols);
  return at::minimum(distance, right ? far_cols - cols : far_cols);
}

// --- Canny (kornia.filters.canny with its defaults: 5x5 gaussian, sigma 1, hysteresis) ---

constexpr float kCannyEps = 1e-6f;  // kornia's eps under the magnitude's square root

// kornia's rgb_to_grayscale, accumulated in its order (red, then green and blue by addcmul).
at::Tensor grayscale(const at::Tensor& nchw) {
  const at::Tensor weights = at::tensor({0.299f, 0.587f, 0.114f});
  const at::Tensor gray = nchw.narrow(1, 0, 1) * weights[0];
  return at::addcmul(at::addcmul(gray, nchw.narrow(1, 1, 1), weights[1]), nchw.narrow(1, 2, 1),
                     weights[2]);
}

// kornia's gaussian: exp(-x^2 / (2 sigma^2)) at integer offsets from the centre, normalised.
at::Tensor offset_gaussian_line(int64_t size, double sigma) {
  const at::Tensor offsets = at::arange(size, at::kFloat) - static_cast<double>(size / 2);
  const at::Tensor line = at::exp(-offsets.square() / (2.0 * sigma * sigma));
  return line / line.sum();
}

// kornia's separable gaussian_blur2d of [B,1,H,W] with reflected borders: along the rows, then
// along the columns (the order fixes the float rounding that decides Canny's ties).
at::Tensor separable_blur(const at::Tensor& gray, int64_t size, double sigma) {
  const at::Tensor line = offset_gaussian_line(size, sigma);
  const int64_t radius = size / 2;
  require_room_to_reflect(gray, radius);
  const at::Tensor rows =
      at::conv2d(at::reflection_pad2d(gray, {radius, radius, 0, 0}), line.view({1, 1, 1, size}));
  return at::conv2d(at::reflection_pad2d(rows, {0, 0, radius, radius}), line.view({1, 1, size, 1}));
}

// Sobel x and y gradients of [B,1,H,W] with replicated borders: [B,2,H,W].
at::Tensor sobel_gradients(const at::Tensor& gray) {
  const at::Tensor kx = at::tensor({-1.0f, 0.0f, 1.0f, -2.0f, 0.0f, 2.0f, -1.0f, 0.0f, 1.0f}).reshape({3, 3});
  const at::Tensor weight = at::stack({kx, kx.t()}).unsqueeze(1).contiguous();
  return at::conv2d(at::replication_pad2d(gray, {1, 1, 1, 1}), weight);
}

// The 8 neighbours of every pixel of [B,1,H,W] (`outside` beyond the image), in kornia's direction
// order: right, bottom-right, bottom, bottom-left, left, top-left, top, top-right: [B,8,H,W].
at::Tensor neighbours(const at::Tensor& plane, double outside = 0.0) {
  static const int64_t offsets[8][2] = {{0, 1}, {1, 1}, {1, 0}, {1, -1}, {0, -1}, {-1, -1}, {-1, 0}, {-1, 1}};
  const int64_t height = plane.size(2), width = plane.size(3);
  const at::Tensor padded = at::constant_pad_nd(plane, {1, 1, 1, 1}, outside);
  std::vector<at::Tensor> shifted;
  for (const auto& [dy, dx] : offsets) {
    shifted.push_back(padded.narrow(2, 1 + dy, height).narrow(3, 1 + dx, width));
  }
  return at::cat(shifted, 1);
}

// The gradient magnitude sqrt(gx² + gy² + eps) of a flat region (and beyond the image's border).
const double kFlatMagnitude = static_cast<double>(std::sqrt(kCannyEps));

// Whether the magnitude beats its neighbour in `direction` (kornia's order): strictly, except that
// a tie with the neighbour to the right or below counts, so of two equal pixels across a step
// the left (upper) one stays.
at::Tensor beats(const at::Tensor& magnitude, const at::Tensor& neighbour,
                 const at::Tensor& direction) {
  const at::Tensor accepts_tie = (direction == 0) | (direction == 2);
  return (magnitude > neighbour) | (accepts_tie & (magnitude == neighbour));
}

// Keeps the magnitude where it beats both neighbours along the gradient direction rounded to
// 45° and the gradient is not flat.
at::Tensor suppress_non_maxima(const at::Tensor& magnitude, const at::Tensor& gradients) {
  const at::Tensor gx = gradients.narrow(1, 0, 1), gy = gradients.narrow(1, 1, 1);
  const at::Tensor octant = at::round(at::atan2(gy, gx) * (4.0 / M_PI));
  const at::Tensor forward = at::remainder(octant, 8.0).to(at::kLong);
  const at::Tensor backward = at::remainder(octant + 4.0, 8.0).to(at::kLong);
  const at::Tensor around = neighbours(magnitude, kFlatMagnitude);
  const at::Tensor is_max = beats(magnitude, around.gather(1, forward), forward) &
                            beats(magnitude, around.gather(1, backward), backward);
  return magnitude * (is_max & (magnitude > kFlatMagnitude));
}

// Weak edges (0.5) touching a strong one (1) become strong, repeatedly; the rest are dropped.
at::Tensor hysteresis(at::Tensor edges) {
  at::Tensor previous = at::full_like(edges, -1.0);
  at::Tensor promoted;
  while (!at::equal(previous, edges)) {
    const at::Tensor weak = (edges == 0.5).to(edges.scalar_type());
    const at::Tensor strong = (edges == 1.0).to(edges.scalar_type());
    const at::Tensor touches_strong = (neighbours(edges) == 1.0).any(1, true).to(edges.scalar_type());
    promoted = touches_strong * weak + strong;
    previous = edges;
    edges = promoted + (promoted == 0.0).to(edges.scalar_type()) * weak * 0.5;
  }
  return promoted;
}

int channel_index(const std::string& channel, const std::vector<std::string>& names) {
  const auto it = std::find(names.begin(), names.end(), channel);
  if (it == names.end()) throw Error(ErrorCode::kInvalidArgument, "unknown channel '" + channel + "'");
  return static_cast<int>(it - names.begin());
}

}  // namespace

PixelSize scaled_size(const at::Tensor& pixels, double scale_by) {
  return checked_size(python_round(static_cast<double>(pixels.size(2)) * scale_by),
                      python_round(static_cast<double>(pixels.size(1)) * scale_by));
}

PixelSize total_pixels_size(const at::Tensor& pixels, double megapixels) {
  const auto total = static_cast<double>(static_cast<int64_t>(megapixels * 1024.0 * 1024.0));
  const double width = static_cast<double>(pixels.size(2)), height = static_cast<double>(pixels.size(1));
  const double scale_by = std::sqrt(total / (width * height));
  return checked_size(python_round(width * scale_by), python_round(height * scale_by));
}

at::Tensor invert_image(const at::Tensor& pixels) { return 1.0 - pixels; }

at::Tensor blur_image(const at::Tensor& pixels, int64_t radius, double sigma) {
  if (radius == 0) return pixels;
  return to_nhwc(filter_reflected(to_nchw(pixels), grid_gaussian_kernel(2 * radius + 1, sigma)));
}

at::Tensor sharpen_image(const at::Tensor& pixels, int64_t radius, double sigma, double alpha) {
  if (radius == 0) return pixels;
  at::Tensor kernel = grid_gaussian_kernel(2 * radius + 1, sigma) * -(alpha * 10.0);
  kernel[radius][radius] = kernel[radius][radius] - kernel.sum() + 1.0;
  return to_nhwc(filter_reflected(to_nchw(pixels), kernel)).clamp(0.0, 1.0);
}

at::Tensor blend_images(const at::Tensor& image1, const at::Tensor& image2, double factor,
                        const std::string& mode) {
  at::Tensor second = image2;
  if (image1.sizes() != image2.sizes()) {
    second = scale_images(image2, "bicubic", image1.size(2), image1.size(1), "center");
  }
  require_broadcastable_batches(image1, second, "ImageBlend");
  const at::Tensor blended = blend_mode(image1, second, mode);
  return (image1 * (1.0 - factor) + blended * factor).clamp(0.0, 1.0);
}

at::Tensor batch_images(const at::Tensor& image1, const at::Tensor& image2) {
  at::Tensor second = image2;
  if (image1.sizes().slice(1) != image2.sizes().slice(1)) {
    second = scale_images(image2, "bilinear", image1.size(2), image1.size(1), "center");
  }
  return at::cat({image1, second}, 0);
}

at::Tensor empty_image(int64_t width, int64_t height, int64_t batch, int64_t color) {
  std::vector<at::Tensor> channels;
  for (int shift : {16, 8, 0}) {
    const double value = static_cast<double>((color >> shift) & 0xFF) / 255.0;
    channels.push_back(at::full({batch, height, width, 1}, value, at::kFloat));
  }
  return at::cat(channels, -1);
}

at::Tensor crop_image(const at::Tensor& pixels, int64_t width, int64_t height, int64_t x, int64_t y) {
  const int64_t image_h = pixels.size(1), image_w = pixels.size(2);
  x = std::min(x, image_w - 1);
  y = std::min(y, image_h - 1);
  return pixels.narrow(1, y, std::min(height, image_h - y)).narrow(2, x, std::min(width, image_w - x));
}

PaddedImage pad_for_outpaint(const at::Tensor& pixels, int64_t left, int64_t top, int64_t right,
                             int64_t bottom, int64_t feathering) {
  const int64_t batch = pixels.size(0), height = pixels.size(1), width = pixels.size(2);
  const int64_t out_h = height + top + bottom, out_w = width + left + right;
  PaddedImage out;
  out.pixels = at::full({batch, out_h, out_w, pixels.size(3)}, 0.5, at::kFloat);
  out.pixels.narrow(1, top, height).narrow(2, left, width).copy_(pixels);
  at::Tensor inside = at::zeros({height, width}, at::kFloat);
  if (feathering > 0 && feathering * 2 < height && feathering * 2 < width) {
    const at::Tensor d = distance_to_padded_sides(height, width, top != 0, bottom != 0, left != 0, right != 0);
    const at::Tensor v = (static_cast<double>(feathering) - d) / static_cast<double>(feathering);
    inside = at::where(d < static_cast<double>(feathering), v * v, at::zeros_like(v)).to(at::kFloat);
  }
  out.mask = at::ones({out_h, out_w}, at::kFloat);
  out.mask.narrow(0, top, height).narrow(1, left, width).copy_(inside);
  out.mask = out.mask.unsqueeze(0);
  return out;
}

at::Tensor composite_images(const at::Tensor& destination, const at::Tensor& source, int64_t x,
                            int64_t y, bool resize_source, const at::Tensor& mask) {
  at::Tensor canvas = to_nchw(destination).clone();
  const int64_t batch = canvas.size(0), height = canvas.size(2), width = canvas.size(3);
  at::Tensor src = to_nchw(source);
  if (resize_source) src = resize_bilinear(src, height, width);
  src = repeat_to_batch(src, batch);
  const at::Tensor weights = composite_mask(mask, src, batch);
  const int64_t left = std::clamp<int64_t>(x, 0, width), top = std::clamp<int64_t>(y, 0, height);
  const int64_t visible_w = std::min(src.size(3), width - left);
  const int64_t visible_h = std::min(src.size(2), height - top);
  if (visible_w <= 0 || visible_h <= 0) return to_nhwc(canvas);
  at::Tensor region = canvas.narrow(2, top, visible_h).narrow(3, left, visible_w);
  const at::Tensor m = weights.narrow(2, 0, visible_h).narrow(3, 0, visible_w);
  const at::Tensor s = src.narrow(2, 0, visible_h).narrow(3, 0, visible_w);
  region.copy_(m * s + (1.0 - m) * region);
  return to_nhwc(canvas);
}

at::Tensor canny_edges(const at::Tensor& pixels, double low_threshold, double high_threshold) {
  if (low_threshold > high_threshold) {
    throw Error(ErrorCode::kInvalidArgument, "Canny: low_threshold must not exceed high_threshold");
  }
  const at::Tensor gray = grayscale(to_nchw(pixels.to(at::kFloat)));
  const at::Tensor blurred = separable_blur(gray, 5, 1.0);
  const at::Tensor gradients = sobel_gradients(blurred);
  const at::Tensor magnitude = at::sqrt(gradients.square().sum(1, true) + kCannyEps);
  const at::Tensor thin = suppress_non_maxima(magnitude, gradients);
  const at::Tensor edges = ((thin > low_threshold).to(at::kFloat) * 0.5 +
                            (thin > high_threshold).to(at::kFloat) * 0.5);
  return to_nhwc(hysteresis(edges).expand({-1, 3, -1, -1}));
}

at::Tensor image_channel_mask(const at::Tensor& pixels, const std::string& channel) {
  const int index = channel_index(channel, {"red", "green", "blue", "alpha"});
  if (index >= pixels.size(3)) {
    throw Error(ErrorCode::kInvalidArgument, "the image has no " + channel + " channel");
  }
  return pixels.select(3, index).contiguous();
}

at::Tensor mask_to_image(const at::Tensor& mask) {
  return mask.reshape({-1, mask.size(-2), mask.size(-1), 1}).expand({-1, -1, -1, 3}).contiguous();
}

at::Tensor image8_channel_mask(const Image8& image, const std::string& channel) {
  const int index = channel_index(channel, {"red", "green", "blue", "alpha"});
  const at::Tensor raw = at::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                       {image.height, image.width, image.channels}, at::kByte);
  if (index == 3) {
    if (image.channels < 4) return at::zeros({1, image.height, image.width}, at::kFloat);
    return (1.0 - raw.select(2, 3).to(at::kFloat) / 255.0).unsqueeze(0).contiguous();
  }
  return (raw.select(2, index).to(at::kFloat) / 255.0).unsqueeze(0).contiguous();
}

}  // namespace df::nodes
