// FreeU's output block patch: backbone scaling and the Fourier filter of the skip features.
#include "engine/unet_patches/free_u.h"

#include <algorithm>

namespace df::engine {
namespace {

// [start, end) of Python's x[start:end] over an axis of `size` (start may be negative).
std::pair<int64_t, int64_t> python_slice(int64_t start, int64_t end, int64_t size) {
  if (start < 0) start = std::max<int64_t>(0, start + size);
  end = std::min(end, size);
  return {start, std::max(start, end)};
}

at::Tensor first_half(const at::Tensor& h) { return h.narrow(1, 0, h.size(1) / 2); }

at::Tensor with_first_half(const at::Tensor& h, const at::Tensor& replacement) {
  at::Tensor out = h.clone();
  first_half(out).copy_(replacement);
  return out;
}

}  // namespace

at::Tensor fourier_filter(const at::Tensor& x, int64_t threshold, double scale) {
  const std::vector<int64_t> dims = {-2, -1};
  at::Tensor frequencies = at::fft_fftshift(at::fft_fftn(x.to(at::kFloat), std::nullopt, dims), dims);
  const int64_t height = frequencies.size(-2), width = frequencies.size(-1);
  const auto [top, bottom] = python_slice(height / 2 - threshold, height / 2 + threshold, height);
  const auto [left, right] = python_slice(width / 2 - threshold, width / 2 + threshold, width);
  frequencies.narrow(-2, top, bottom - top).narrow(-1, left, right - left).mul_(scale);
  const at::Tensor filtered =
      at::real(at::fft_ifftn(at::fft_ifftshift(frequencies, dims), std::nullopt, dims));
  return filtered.to(x.scalar_type());
}

at::Tensor scale_backbone(const at::Tensor& h, double factor) {
  return with_first_half(h, first_half(h) * factor);
}

at::Tensor scale_backbone_by_mean(const at::Tensor& h, double factor) {
  const int64_t batch = h.size(0);
  const at::Tensor mean = h.mean(1, /*keepdim=*/true);
  const at::Tensor flat = mean.reshape({batch, -1});
  const at::Tensor low = std::get<0>(flat.min(-1, /*keepdim=*/true)).reshape({batch, 1, 1, 1});
  const at::Tensor high = std::get<0>(flat.max(-1, /*keepdim=*/true)).reshape({batch, 1, 1, 1});
  const at::Tensor normalised = (mean - low) / (high - low);
  return with_first_half(h, first_half(h) * ((factor - 1.0) * normalised + 1.0));
}

UNetPatches free_u_patches(int64_t model_channels, FreeUFactors factors, FreeUVersion version) {
  UNetPatches patches;
  patches.output_block.push_back([=](at::Tensor& h, at::Tensor& skip, const UNetPatchContext&) {
    double backbone = 0.0, skip_scale = 0.0;
    if (h.size(1) == model_channels * 4) {
      backbone = factors.b1;
      skip_scale = factors.s1;
    } else if (h.size(1) == model_channels * 2) {
      backbone = factors.b2;
      skip_scale = factors.s2;
    } else {
      return;
    }
    h = version == FreeUVersion::kV1 ? scale_backbone(h, backbone)
                                     : scale_backbone_by_mean(h, backbone);
    skip = fourier_filter(skip, /*threshold=*/1, skip_scale);
  });
  return patches;
}

}  // namespace df::engine
