// Tells inpainting (9-channel) and InstructPix2Pix (8-channel) UNets from plain ones.
#include "engine/unet_inputs.h"

#include <string>

#include "core/error.h"

namespace df::engine {

int extra_input_channels(UNetExtraInputs inputs, int latent_channels) {
  switch (inputs) {
    case UNetExtraInputs::kInpaint:
      return latent_channels + 1;
    case UNetExtraInputs::kInstructPix2Pix:
      return latent_channels;
    case UNetExtraInputs::kNone:
      break;
  }
  return 0;
}

UNetExtraInputs unet_extra_inputs(const UNetConfig& config) {
  const int latent = config.out_channels;
  for (UNetExtraInputs kind : {UNetExtraInputs::kNone, UNetExtraInputs::kInpaint,
                               UNetExtraInputs::kInstructPix2Pix}) {
    if (config.in_channels == latent + extra_input_channels(kind, latent)) return kind;
  }
  throw Error(ErrorCode::kUnsupported,
              "a UNet with " + std::to_string(config.in_channels) + " input channels and " +
                  std::to_string(latent) + " output channels is not supported (" +
                  std::to_string(latent) + ": a plain model, " + std::to_string(latent + 5) +
                  ": inpainting, " + std::to_string(latent + 4) + ": InstructPix2Pix)");
}

}  // namespace df::engine
