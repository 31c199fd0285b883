// CFGNorm: the guided estimate's channel norm limited to the conditional estimate's.
#include "engine/guidance/cfg_norm.h"

namespace df::engine {

PostCfgFunction cfg_norm(double strength) {
  return [strength](const CfgArgs& args, const at::Tensor& denoised) {
    constexpr double kEpsilon = 1e-8;
    const at::Tensor cond_norm = at::linalg_vector_norm(args.cond_denoised, 2, {1}, true);
    const at::Tensor guided_norm = at::linalg_vector_norm(denoised, 2, {1}, true);
    const at::Tensor scale = (cond_norm / (guided_norm + kEpsilon)).clamp(0.0, 1.0);
    return denoised * scale * strength;
  };
}

}  // namespace df::engine
