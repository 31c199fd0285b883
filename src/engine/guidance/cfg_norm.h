// CFGNorm (ComfyUI's post-CFG function of the same name, comfy_extras/nodes_cfg.py): the guided
// estimate's per-pixel channel norm capped at the conditional estimate's.
#pragma once

#include "engine/checkpoint_bundle.h"

namespace df::engine {

// Scales the guided estimate at each pixel by min(1, |cond| / (|guided| + 1e-8)), the norms taken
// over the channels, and by `strength`.
PostCfgFunction cfg_norm(double strength);

}  // namespace df::engine
