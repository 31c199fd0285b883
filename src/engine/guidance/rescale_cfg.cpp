// RescaleCFG: CFG rescaled towards the conditional prediction's standard deviation.
#include "engine/guidance/rescale_cfg.h"

#include <cmath>

namespace df::engine {

CfgFunction rescale_cfg(double multiplier) {
  return [multiplier](const CfgArgs& args) {
    const double sigma = args.sigma, s2 = sigma * sigma + 1.0;
    const at::Tensor x = args.x / s2;
    const at::Tensor cond = (x - args.cond_denoised) * std::sqrt(s2) / sigma;
    const at::Tensor uncond = (x - args.uncond_denoised) * std::sqrt(s2) / sigma;
    const at::Tensor x_cfg = uncond + (cond - uncond) * args.cfg;
    const at::Tensor ro_pos = cond.std({1, 2, 3}, /*unbiased=*/true, /*keepdim=*/true);
    const at::Tensor ro_cfg = x_cfg.std({1, 2, 3}, /*unbiased=*/true, /*keepdim=*/true);
    const at::Tensor x_final = x_cfg * (ro_pos / ro_cfg) * multiplier + x_cfg * (1.0 - multiplier);
    return x - x_final * sigma / std::sqrt(s2);
  };
}

}  // namespace df::engine
