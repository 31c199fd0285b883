// ComfyUI's latent operations (its latent nodes, common_upscale, bislerp, tiled_scale) on tensors.
#include "nodes/latent_ops.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "nodes/image_ops.h"
#include "nodes/image_tensors.h"

namespace df::nodes {
namespace {

constexpr int64_t kPixelsPerCell = 8;  // LATENT positions and sizes in pixels are multiples of 8

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, what);
}

void check_latents(const at::Tensor& samples, const char* name) {
  if (!samples.defined() || samples.dim() != 4 || samples.size(2) < 1 || samples.size(3) < 1) {
    invalid(std::string(name) + " must be a latent batch [B,C,h,w] of at least one cell");
  }
}

void check_choice(const std::string& value, const std::vector<std::string>& choices,
                  const char* what) {
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return;
  std::string listed;
  for (const auto& choice : choices) listed += (listed.empty() ? "" : ", ") + choice;
  invalid("unknown " + std::string(what) + " '" + value + "' (expected one of " + listed + ")");
}

// Python's round() of a float: halves to even (the default floating-point rounding mode).
int64_t python_round(double value) { return static_cast<int64_t>(std::nearbyint(value)); }

// Two latent batches that one broadcasts onto the other: equal channels, batches equal or one 1.
void check_batch_pair(const at::Tensor& a, const at::Tensor& b, const char* operation) {
  if (a.size(1) != b.size(1)) {
    invalid(std::string(operation) + ": the latents have " + std::to_string(a.size(1)) + " and " +
            std::to_string(b.size(1)) + " channels");
  }
  if (a.size(0) != b.size(0) && a.size(0) != 1 && b.size(0) != 1) {
    invalid(std::string(operation) + ": batches of " + std::to_string(a.size(0)) + " and " +
            std::to_string(b.size(0)) + " latents do not match");
  }
}

// The sources bilinear resampling (align_corners=False) mixes for each of `new_length` outputs:
// the lower and upper source index and the upper one's weight, as ComfyUI derives them.
struct BilinearSources {
  at::Tensor lower;
  at::Tensor upper;
  at::Tensor ratio;
};

BilinearSources bilinear_sources(int64_t old_length, int64_t new_length) {
  const std::vector<int64_t> size = {1, new_length};
  const at::Tensor index = at::arange(old_length, at::kFloat).reshape({1, 1, 1, -1});
  const at::Tensor lower = at::upsample_bilinear2d(index, size, false).flatten();
  at::Tensor next = index + 1.0;
  next.select(3, old_length - 1).sub_(1.0);
  const at::Tensor upper = at::upsample_bilinear2d(next, size, false).flatten();
  return {lower.to(at::kLong), upper.to(at::kLong), lower - lower.floor()};
}

// Spherical interpolation between the rows of `a` and `b` [N,C] by `ratio` [N,1], lengths
// interpolated linearly; parallel rows keep `a`, opposite rows interpolate linearly.
at::Tensor slerp_rows(const at::Tensor& a, const at::Tensor& b, const at::Tensor& ratio) {
  const at::Tensor norm_a = a.norm(2, {-1}, true), norm_b = b.norm(2, {-1}, true);
  const at::Tensor unit_a = at::where(norm_a == 0.0, at::zeros_like(a), a / norm_a);
  const at::Tensor unit_b = at::where(norm_b == 0.0, at::zeros_like(b), b / norm_b);
  const at::Tensor dot = (unit_a * unit_b).sum(1);
  const at::Tensor omega = at::acos(dot), sin_omega = at::sin(omega);
  const at::Tensor r = ratio.squeeze(1);
  at::Tensor result = (at::sin((1.0 - r) * omega) / sin_omega).unsqueeze(1) * unit_a +
                      (at::sin(r * omega) / sin_omega).unsqueeze(1) * unit_b;
  result = result * (norm_a * (1.0 - ratio) + norm_b * ratio);
  result = at::where((dot > 1.0 - 1e-5).unsqueeze(1), a, result);
  return at::where((dot < 1e-5 - 1.0).unsqueeze(1), a * (1.0 - ratio) + b * ratio, result);
}

// One bislerp pass: [B,C,H,W] resized to `new_length` along `dim` (2 or 3).
at::Tensor slerp_axis(const at::Tensor& x, int64_t dim, int64_t new_length) {
  const BilinearSources sources = bilinear_sources(x.size(dim), new_length);
  const at::Tensor lower = x.index_select(dim, sources.lower).movedim(1, -1);
  const at::Tensor upper = x.index_select(dim, sources.upper).movedim(1, -1);
  std::vector<int64_t> ratio_shape = {1, 1, 1, 1};
  ratio_shape[static_cast<size_t>(dim - 1)] = new_length;
  std::vector<int64_t> expanded(lower.sizes().begin(), lower.sizes().end());
  expanded.back() = 1;
  const int64_t channels = x.size(1);
  const at::Tensor ratio = sources.ratio.reshape(ratio_shape).expand(expanded).reshape({-1, 1});
  return slerp_rows(lower.reshape({-1, channels}), upper.reshape({-1, channels}), ratio)
      .reshape(lower.sizes())
      .movedim(-1, 1)
      .contiguous();
}

// Repeat counts that tile `t` `times` along its batch dimension only.
std::vector<int64_t> repeats_along_batch(const at::Tensor& t, int64_t times) {
  std::vector<int64_t> repeats(static_cast<size_t>(t.dim()), 1);
  repeats[0] = times;
  return repeats;
}

std::vector<int> default_batch_index(const LatentValue& latent) {
  if (!latent.batch_index.empty()) return latent.batch_index;
  std::vector<int> index(static_cast<size_t>(latent.samples.size(0)));
  for (size_t i = 0; i < index.size(); ++i) index[i] = static_cast<int>(i);
  return index;
}

// LatentComposite's weights along one side of the pasted region: `feather` cells ramp in at
// each end that lies inside the destination.
at::Tensor feather_ramp(int64_t length, int64_t feather, bool fade_start, bool fade_end) {
  std::vector<float> weights(static_cast<size_t>(length), 1.0f);
  for (int64_t t = 0; t < feather && t < length; ++t) {
    const float a = static_cast<float>(t + 1) / static_cast<float>(feather);
    if (fade_start) weights[static_cast<size_t>(t)] *= a;
    if (fade_end) weights[static_cast<size_t>(length - 1 - t)] *= a;
  }
  return at::tensor(weights, at::kFloat);
}

// tiled_apply's blending weights along one side of a tile: (t + 1) / feather at both ends,
// nothing when the feather is as long as the side.
at::Tensor tile_ramp(int64_t length, int64_t feather) {
  return feather < length ? feather_ramp(length, feather, true, true)
                          : at::ones({length}, at::kFloat);
}

// The start cells of the tiles along one side, as ComfyUI's tiled_scale steps them.
std::vector<int64_t> tile_starts(int64_t length, int64_t tile, int64_t overlap) {
  if (length <= tile) return {0};
  if (overlap < 0 || overlap >= tile) {
    invalid("the tile overlap (" + std::to_string(overlap) + " cells) must be smaller than the " +
            std::to_string(tile) + " cell tiles");
  }
  std::vector<int64_t> starts;
  for (int64_t start = 0; start < length - overlap; start += tile - overlap) {
    starts.push_back(start);
  }
  return starts;
}

at::Tensor sliced(const at::Tensor& t, int64_t top, int64_t left, int64_t height, int64_t width) {
  return t.narrow(2, top, height).narrow(3, left, width);
}

// The averaged result of ComfyUI's three tilings of a tiled VAE pass.
at::Tensor three_tilings(const at::Tensor& input, const TileFunction& run, int64_t tile,
                         int64_t overlap, int64_t in_cell, int64_t out_cell) {
  if (tile < 2) invalid("tile_size must cover at least two latent cells");
  const std::array<TileGrid, 3> grids = {TileGrid{tile * 2, tile / 2, overlap, in_cell, out_cell},
                                         TileGrid{tile / 2, tile * 2, overlap, in_cell, out_cell},
                                         TileGrid{tile, tile, overlap, in_cell, out_cell}};
  at::Tensor sum;
  for (const TileGrid& grid : grids) {
    const at::Tensor pass = tiled_apply(input, run, grid);
    sum = sum.defined() ? sum + pass : pass;
  }
  return sum / 3.0;
}

// ComfyUI's VAEDecodeTiled rule: an overlap over a quarter of the tile shrinks to a quarter.
int64_t limited_overlap(int64_t tile_size, int64_t overlap) {
  if (tile_size < 1 || overlap < 0) invalid("tile_size must be positive and overlap not negative");
  return tile_size < overlap * 4 ? tile_size / 4 : overlap;
}

}  // namespace

at::Tensor upscale_latents(const at::Tensor& samples, const std::string& method, int64_t width,
                           int64_t height, const std::string& crop) {
  check_latents(samples, "samples");
  check_choice(method, {"nearest-exact", "bilinear", "area", "bicubic", "bislerp"},
               "upscale method");
  check_choice(crop, {"disabled", "center"}, "crop");
  if (width < 1 || height < 1) {
    invalid("the upscaled latent would be " + std::to_string(width) + "x" +
            std::to_string(height) + " cells");
  }
  if (method == "bislerp") {
    return bislerp(crop == "center" ? center_crop_to_aspect(samples, width, height) : samples,
                   width, height);
  }
  return scale_images(samples.permute({0, 2, 3, 1}), method, width, height, crop)
      .permute({0, 3, 1, 2})
      .contiguous();
}

at::Tensor bislerp(const at::Tensor& samples, int64_t width, int64_t height) {
  check_latents(samples, "samples");
  const at::Tensor wide = slerp_axis(samples.to(at::kFloat), 3, width);
  return slerp_axis(wide, 2, height).to(samples.scalar_type());
}

LatentValue upscale_latent(const LatentValue& latent, const std::string& method, int64_t width,
                           int64_t height, const std::string& crop) {
  check_latents(latent.samples, "samples");
  if (width == 0 && height == 0) return latent;
  const double h = static_cast<double>(latent.samples.size(2));
  const double w = static_cast<double>(latent.samples.size(3));
  if (width == 0) {
    height = std::max<int64_t>(64, height);
    width = std::max<int64_t>(64, python_round(w * static_cast<double>(height) / h));
  } else if (height == 0) {
    width = std::max<int64_t>(64, width);
    height = std::max<int64_t>(64, python_round(h * static_cast<double>(width) / w));
  } else {
    width = std::max<int64_t>(64, width);
    height = std::max<int64_t>(64, height);
  }
  LatentValue out = latent;
  out.samples = upscale_latents(latent.samples, method, width / kPixelsPerCell,
                                height / kPixelsPerCell, crop);
  return out;
}

LatentValue upscale_latent_by(const LatentValue& latent, const std::string& method, double scale) {
  check_latents(latent.samples, "samples");
  const double h = static_cast<double>(latent.samples.size(2));
  const double w = static_cast<double>(latent.samples.size(3));
  LatentValue out = latent;
  out.samples = upscale_latents(latent.samples, method, python_round(w * scale),
                                python_round(h * scale), "disabled");
  return out;
}

at::Tensor composite_latents(const at::Tensor& destination, const at::Tensor& source, int64_t x,
                             int64_t y, int64_t feather) {
  check_latents(destination, "samples_to");
  check_latents(source, "samples_from");
  check_batch_pair(destination, source, "LatentComposite");
  if (destination.size(0) == 1 && source.size(0) > 1) {
    invalid("LatentComposite: a batch of " + std::to_string(source.size(0)) +
            " latents cannot be pasted into a single latent");
  }
  if (x < 0 || y < 0 || feather < 0) invalid("LatentComposite: x, y and feather must not be negative");
  x /= kPixelsPerCell;
  y /= kPixelsPerCell;
  feather /= kPixelsPerCell;
  at::Tensor out = destination.clone();
  const int64_t to_h = destination.size(2), to_w = destination.size(3);
  if (x >= to_w || y >= to_h) return out;
  const int64_t visible_h = std::min(source.size(2), to_h - y);
  const int64_t visible_w = std::min(source.size(3), to_w - x);
  const at::Tensor pasted = sliced(source, 0, 0, visible_h, visible_w);
  at::Tensor region = sliced(out, y, x, visible_h, visible_w);
  if (feather == 0) {
    region.copy_(pasted);
    return out;
  }
  const at::Tensor rows = feather_ramp(visible_h, feather, y != 0, y + visible_h < to_h);
  const at::Tensor columns = feather_ramp(visible_w, feather, x != 0, x + visible_w < to_w);
  const at::Tensor mask = rows.view({1, 1, -1, 1}) * columns.view({1, 1, 1, -1});
  region.copy_(pasted * mask + region * (1.0 - mask));
  return out;
}

at::Tensor composite_latents_masked(const at::Tensor& destination, const at::Tensor& source,
                                    int64_t x, int64_t y, bool resize_source,
                                    const at::Tensor& mask) {
  check_latents(destination, "destination");
  check_latents(source, "source");
  if (destination.size(1) != source.size(1)) {
    invalid("LatentCompositeMasked: the latents have " + std::to_string(destination.size(1)) +
            " and " + std::to_string(source.size(1)) + " channels");
  }
  if (x < 0 || y < 0) invalid("LatentCompositeMasked: x and y must not be negative");
  return composite_images(destination.permute({0, 2, 3, 1}), source.permute({0, 2, 3, 1}),
                          x / kPixelsPerCell, y / kPixelsPerCell, resize_source, mask)
      .permute({0, 3, 1, 2})
      .contiguous();
}

at::Tensor blend_latents(const at::Tensor& samples1, const at::Tensor& samples2, double factor) {
  check_latents(samples1, "samples1");
  check_latents(samples2, "samples2");
  check_batch_pair(samples1, samples2, "LatentBlend");
  at::Tensor second = samples2;
  if (samples1.sizes() != samples2.sizes()) {
    second = upscale_latents(samples2, "bicubic", samples1.size(3), samples1.size(2), "center");
  }
  return samples1 * factor + second * (1.0 - factor);
}

LatentValue repeat_latent_batch(const LatentValue& latent, int64_t amount) {
  check_latents(latent.samples, "samples");
  if (amount < 1) invalid("RepeatLatentBatch: amount must be at least 1");
  LatentValue out = latent;
  out.samples = latent.samples.repeat(repeats_along_batch(latent.samples, amount));
  if (latent.noise_mask.defined() && latent.noise_mask.size(0) > 1) {
    out.noise_mask = latent.noise_mask.repeat(repeats_along_batch(latent.noise_mask, amount));
  }
  if (!latent.batch_index.empty()) {
    const auto [low, high] = std::minmax_element(latent.batch_index.begin(), latent.batch_index.end());
    const int offset = *high - *low + 1;
    for (int64_t i = 1; i < amount; ++i) {
      for (const int index : latent.batch_index) {
        out.batch_index.push_back(index + static_cast<int>(i) * offset);
      }
    }
  }
  return out;
}

LatentValue latent_from_batch(const LatentValue& latent, int64_t batch_index, int64_t length) {
  check_latents(latent.samples, "samples");
  const int64_t batch = latent.samples.size(0);
  if (batch == 0) invalid("LatentFromBatch: the latent batch is empty");
  if (batch_index < 0 || length < 1) {
    invalid("LatentFromBatch: batch_index must not be negative and length must be at least 1");
  }
  const int64_t first = std::min(batch - 1, batch_index);
  const int64_t count = std::min(batch - first, length);
  LatentValue out;
  out.samples = latent.samples.narrow(0, first, count).clone();
  if (latent.noise_mask.defined()) {
    at::Tensor masks = latent.noise_mask;
    if (masks.size(0) == 1) {
      out.noise_mask = masks.clone();
    } else {
      if (masks.size(0) < batch) {
        const int64_t times = (batch + masks.size(0) - 1) / masks.size(0);
        masks = masks.repeat(repeats_along_batch(masks, times)).narrow(0, 0, batch);
      }
      out.noise_mask = masks.narrow(0, first, count).clone();
    }
  }
  const std::vector<int> indices = default_batch_index(latent);
  const size_t begin = std::min(indices.size(), static_cast<size_t>(first));
  const size_t end = std::min(indices.size(), static_cast<size_t>(first + count));
  out.batch_index.assign(indices.begin() + static_cast<std::ptrdiff_t>(begin),
                         indices.begin() + static_cast<std::ptrdiff_t>(end));
  return out;
}

LatentValue batch_latents(const LatentValue& first, const LatentValue& second) {
  check_latents(first.samples, "samples1");
  check_latents(second.samples, "samples2");
  if (first.samples.size(1) != second.samples.size(1)) {
    invalid("LatentBatch: the latents have " + std::to_string(first.samples.size(1)) + " and " +
            std::to_string(second.samples.size(1)) + " channels");
  }
  at::Tensor appended = second.samples;
  if (appended.sizes().slice(1) != first.samples.sizes().slice(1)) {
    appended = upscale_latents(appended, "bilinear", first.samples.size(3), first.samples.size(2),
                               "center");
  }
  LatentValue out = first;
  out.samples = at::cat({first.samples, appended}, 0);
  out.batch_index = default_batch_index(first);
  const std::vector<int> more = default_batch_index(second);
  out.batch_index.insert(out.batch_index.end(), more.begin(), more.end());
  return out;
}

at::Tensor tiled_apply(const at::Tensor& input, const TileFunction& run, const TileGrid& grid) {
  check_latents(input, "tiled input");
  const int64_t in_cell = grid.in_cell, out_cell = grid.out_cell;
  if (in_cell < 1 || out_cell < 1 || input.size(2) % in_cell != 0 || input.size(3) % in_cell != 0) {
    throw Error(ErrorCode::kInternal, "tiled input is not made of whole cells");
  }
  const int64_t cells_h = input.size(2) / in_cell, cells_w = input.size(3) / in_cell;
  if (cells_h <= grid.tile_height && cells_w <= grid.tile_width) return run(input);
  const int64_t feather = grid.overlap * out_cell;
  const std::vector<int64_t> tops = tile_starts(cells_h, grid.tile_height, grid.overlap);
  const std::vector<int64_t> lefts = tile_starts(cells_w, grid.tile_width, grid.overlap);
  at::Tensor total, weight;
  for (const int64_t top : tops) {
    for (const int64_t left : lefts) {
      const int64_t h = std::min(grid.tile_height, cells_h - top);
      const int64_t w = std::min(grid.tile_width, cells_w - left);
      const at::Tensor result =
          run(sliced(input, top * in_cell, left * in_cell, h * in_cell, w * in_cell));
      if (result.dim() != 4 || result.size(0) != input.size(0) || result.size(2) != h * out_cell ||
          result.size(3) != w * out_cell) {
        throw Error(ErrorCode::kInternal, "a tile came back with an unexpected shape");
      }
      if (!total.defined()) {
        total = at::zeros({input.size(0), result.size(1), cells_h * out_cell, cells_w * out_cell},
                          result.options());
        weight = at::zeros_like(total);
      }
      const at::Tensor mask = tile_ramp(result.size(2), feather).view({1, 1, -1, 1}) *
                              tile_ramp(result.size(3), feather).view({1, 1, 1, -1});
      const int64_t y = top * out_cell, x = left * out_cell;
      sliced(total, y, x, result.size(2), result.size(3)).add_(result * mask);
      sliced(weight, y, x, result.size(2), result.size(3)).add_(mask.expand_as(result));
    }
  }
  return total / weight;
}

at::Tensor decode_tiled(const engine::VaeCodec& vae, const at::Tensor& latents, int64_t tile_size,
                        int64_t overlap, const std::function<void()>& before_tile) {
  check_latents(latents, "samples");
  overlap = limited_overlap(tile_size, overlap);
  const int64_t cell = vae.downscale();
  const TileFunction decode = [&](const at::Tensor& tile) {
    if (before_tile) before_tile();
    return vae.decode(tile).permute({0, 3, 1, 2});
  };
  return three_tilings(latents, decode, tile_size / cell, overlap / cell, 1, cell)
      .permute({0, 2, 3, 1})
      .contiguous();
}

at::Tensor encode_tiled(const engine::VaeCodec& vae, const at::Tensor& pixels, int64_t tile_size,
                        int64_t overlap, const std::function<void()>& before_tile) {
  if (!pixels.defined() || pixels.dim() != 4) invalid("pixels must be an image batch [B,H,W,C]");
  overlap = limited_overlap(tile_size, overlap);
  const int64_t cell = vae.downscale();
  const int64_t h = pixels.size(1) / cell * cell, w = pixels.size(2) / cell * cell;
  if (h == 0 || w == 0) {
    invalid("image is smaller than the VAE's " + std::to_string(cell) + " pixel latent cell");
  }
  const at::Tensor cropped = pixels.narrow(1, (pixels.size(1) - h) / 2, h)
                                 .narrow(2, (pixels.size(2) - w) / 2, w)
                                 .narrow(3, 0, 3)
                                 .permute({0, 3, 1, 2});
  const TileFunction encode = [&](const at::Tensor& tile) {
    if (before_tile) before_tile();
    return vae.encode(tile.permute({0, 2, 3, 1}));
  };
  return three_tilings(cropped, encode, tile_size / cell, overlap / cell, cell, 1);
}

InpaintEncodeInputs inpaint_encode_inputs(const at::Tensor& pixels, const at::Tensor& mask,
                                          int64_t grow_mask_by, int64_t cell) {
  if (grow_mask_by < 0) throw Error(ErrorCode::kInvalidArgument, "grow_mask_by must not be negative");
  const int64_t height = pixels.size(1), width = pixels.size(2);
  const int64_t h = height / cell * cell, w = width / cell * cell;
  if (h == 0 || w == 0) {
    throw Error(ErrorCode::kInvalidArgument, "the image is smaller than one VAE cell");
  }
  at::Tensor m = mask.to(at::kFloat).reshape({-1, 1, mask.size(-2), mask.size(-1)});
  m = at::upsample_bilinear2d(m, {height, width}, false);
  const int64_t top = (height % cell) / 2, left = (width % cell) / 2;
  at::Tensor cropped = pixels.narrow(1, top, h).narrow(2, left, w).to(at::kFloat).clone();
  m = m.narrow(2, top, h).narrow(3, left, w);
  at::Tensor grown = m;
  if (grow_mask_by > 0) {
    const at::Tensor kernel = at::ones({1, 1, grow_mask_by, grow_mask_by});
    const int64_t padding = grow_mask_by / 2;  // ceil((grow - 1) / 2)
    grown = at::conv2d(m.round(), kernel, {}, 1, padding).clamp(0.0, 1.0);
  }
  const at::Tensor keep = (1.0 - m.round()).squeeze(1).unsqueeze(-1);  // [N,H,W,1]
  cropped.narrow(3, 0, 3).copy_((cropped.narrow(3, 0, 3) - 0.5) * keep + 0.5);
  return {cropped.narrow(3, 0, 3), grown.narrow(2, 0, h).narrow(3, 0, w).round()};
}

}  // namespace df::nodes
