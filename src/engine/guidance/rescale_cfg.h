// RescaleCFG (ComfyUI's sampler_cfg_function of the same name): classifier-free guidance whose
// result is rescaled towards the conditional prediction's standard deviation.
#pragma once

#include "engine/checkpoint_bundle.h"

namespace df::engine {

// CFG computed on v-prediction terms of the denoised estimates, its per-image standard deviation
// (over channels and pixels, unbiased) rescaled to the conditional one's, then blended with the
// plain CFG result: multiplier * rescaled + (1 - multiplier) * plain. Returns the denoised x0;
// multiplier 0 gives plain CFG.
CfgFunction rescale_cfg(double multiplier);

}  // namespace df::engine
