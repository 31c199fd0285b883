// Loading the diffusion models of the DiT families (FLUX.1, SD3/3.5, Z-Image): which family a
// file or folder holds, and the DiffusionModel over its network.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "engine/checkpoint_bundle.h"

namespace df::engine {

// The DiT family of a diffusion model weights file (by its tensor names, with or without the
// "model.diffusion_model." prefix, original or diffusers naming) or diffusers transformer folder
// (by config.json's class name); nullopt for anything else (an SD UNet, or not a model).
std::optional<Family> detect_dit_family(const std::string& path);

// The DiffusionModel of `family` at `path` with the family's default model sampling and latent
// format, its weights in `placement`'s dtype on its device; with `fp8_storage` (UNETLoader's fp8
// weight_dtype) its matrix weights are stored in that fp8 dtype instead and upcast at use
// (fp8_weights.h). Errors as the family's loader throws them (kCorruptFile naming a tensor,
// kUnsupported for variants not built).
std::shared_ptr<const DiffusionModel> load_dit_model(
    const std::string& path, Family family, const RuntimePlacement& placement,
    std::optional<at::ScalarType> fp8_storage = std::nullopt);

}  // namespace df::engine
