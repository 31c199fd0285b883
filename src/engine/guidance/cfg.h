// ComfyUI's cfg_function: one model call's conditional and unconditional predictions combined.
#pragma once

#include "engine/checkpoint_bundle.h"

namespace df::engine {

// The model's CFG hook, or uncond + (cond - uncond) * cfg; cond alone when the unconditional
// prediction was not computed (cfg 1) or cfg is 1; then the model's post-CFG hooks. Reports a
// computed unconditional prediction for the CFG++ samplers (report_uncond_denoised).
at::Tensor apply_guidance(const DiffusionModel& model, const CfgArgs& args);

}  // namespace df::engine
