// The 16-channel VAE of FLUX.1, Z-Image and SD3 as a tiny test config (torch-free).
#pragma once

#include "engine/model_config.h"

namespace df::engine {

// A 4-block (8x) VAE with 16 latent channels and no quant convolutions, like FLUX.1's ae and
// SD3's VAE, scaled down; `family`'s scaling and shift factors.
VaeConfig tiny_flow_vae_config(Family family);

}  // namespace df::engine
