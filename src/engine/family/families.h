// What each model family is, in one place: its name, latent format, native resolution and the
// model sampling its models start with (ComfyUI's supported_models entries).
#pragma once

#include "engine/latent_format.h"
#include "engine/model_config.h"
#include "engine/noise_schedule.h"

namespace df::engine {

struct FamilyTraits {
  Family family;
  LatentFormat latent_format;
  int native_resolution;   // the pixel size its models were trained at
  bool diffusion_transformer;  // a DiT family (DiffusionModel::network), else an SD UNet
};

const FamilyTraits& family_traits(Family family);

// The family's latent format (SD 1.x/2.x: 4 channels x 0.18215; SDXL: 0.13025; FLUX and Z-Image:
// 16 channels, (z - 0.1159) x 0.3611; SD3: 16 channels, (z - 0.0609) x 1.5305).
inline LatentFormat latent_format_of(Family family) { return family_traits(family).latent_format; }

// The model sampling a DiT family's model starts with, as ComfyUI configures it: FLUX.1 dev
// ModelSamplingFlux with shift 1.15 (`distilled_guidance`), FLUX.1 schnell a discrete flow with
// shift 1 and multiplier 1, SD3 a discrete flow with shift 3 and multiplier 1000, Z-Image a
// discrete flow with shift 3 and multiplier 1. Error(kInvalidArgument) for the SD families, whose
// schedule comes from their scheduler config.
NoiseSchedule default_flow_sampling(Family family, bool distilled_guidance);

}  // namespace df::engine
