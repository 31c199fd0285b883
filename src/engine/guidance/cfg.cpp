// ComfyUI's cfg_function over a model's guidance hooks.
#include "engine/guidance/cfg.h"

#include <cmath>

#include "engine/samplers.h"

namespace df::engine {

at::Tensor apply_guidance(const DiffusionModel& model, const CfgArgs& args) {
  const bool has_uncond = args.uncond_denoised.defined();
  if (has_uncond) report_uncond_denoised(args.uncond_denoised);  // the CFG++ samplers step along it
  at::Tensor result;
  if (has_uncond && model.guidance.cfg_function) {
    result = model.guidance.cfg_function(args);
  } else if (!has_uncond || std::abs(args.cfg - 1.0) <= 1e-9) {
    result = args.cond_denoised;
  } else {
    result = args.uncond_denoised + (args.cond_denoised - args.uncond_denoised) * args.cfg;
  }
  for (const auto& post : model.guidance.post_cfg_functions) result = post(args, result);
  return result;
}

}  // namespace df::engine
