// What a UNet reads beside the noisy latent: nothing, an inpainting mask and masked image, or an
// InstructPix2Pix image (ComfyUI's c_concat), told by its input channels.
#pragma once

#include "engine/model_config.h"

namespace df::engine {

enum class UNetExtraInputs {
  kNone,              // in_channels == out_channels
  kInpaint,           // + 1 mask channel + the masked image's latent (9 for SD)
  kInstructPix2Pix,   // + the image's latent (8 for SD)
};

// The extra inputs of a UNet with `config`'s channels. Throws Error(kUnsupported) for any other
// input channel count.
UNetExtraInputs unet_extra_inputs(const UNetConfig& config);

// How many channels the extra inputs add (0, latent + 1, or latent).
int extra_input_channels(UNetExtraInputs inputs, int latent_channels);

}  // namespace df::engine
