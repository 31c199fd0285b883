// Deep Shrink's input and output block patches.
#include "engine/unet_patches/deep_shrink.h"

#include <algorithm>
#include <cmath>

namespace df::engine {

int64_t shrunk_size(int64_t size, double downscale_factor) {
  // std::nearbyint rounds half to even, as Python's round().
  const double scaled = static_cast<double>(size) * (1.0 / downscale_factor);
  return std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(scaled)));
}

UNetPatches deep_shrink_patches(const DeepShrinkOptions& options, FeatureResize downscale,
                                FeatureResize upscale) {
  InputBlockPatch shrink = [options, downscale](const at::Tensor& h, const UNetPatchContext& at) {
    if (at.block.index != options.block_number || !at.sigma) return h;
    if (*at.sigma > options.sigma_start || *at.sigma < options.sigma_end) return h;
    return downscale(h, shrunk_size(h.size(3), options.downscale_factor),
                     shrunk_size(h.size(2), options.downscale_factor));
  };
  UNetPatches patches;
  (options.after_skip ? patches.input_block_after_skip : patches.input_block).push_back(shrink);
  patches.output_block.push_back(
      [upscale](at::Tensor& h, at::Tensor& skip, const UNetPatchContext&) {
        if (h.size(2) != skip.size(2)) h = upscale(h, skip.size(3), skip.size(2));
      });
  return patches;
}

}  // namespace df::engine
