// Tiny 16-channel VAE configs.
#include "engine/family/flow_vae.h"

namespace df::engine {

VaeConfig tiny_flow_vae_config(Family family) {
  VaeConfig v;
  v.block_out_channels = {32, 32, 64, 64};
  v.layers_per_block = 1;
  v.norm_num_groups = 32;
  v.sample_size = 64;
  v.latent_channels = 16;
  v.use_quant_conv = false;
  const bool sd3 = family == Family::kSD3;
  v.scaling_factor = sd3 ? 1.5305 : 0.3611;
  v.shift_factor = sd3 ? 0.0609 : 0.1159;
  return v;
}

}  // namespace df::engine
