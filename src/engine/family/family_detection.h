// Which model family a weights file or diffusers folder holds, from tensor names and configs
// alone (torch-free): the one detector the registry and the loaders share.
#pragma once

#include <optional>
#include <string>

#include "engine/model_config.h"
#include "engine/tensor_file.h"

namespace df::engine {

struct DetectedFamily {
  Family family;
  bool distilled_guidance = false;  // FLUX.1 dev (guidance_in); false for schnell

  // The registry's family name: "sd1", "sd2", "sdxl", "sdxl_refiner", "flux" (FLUX.1 dev),
  // "flux_schnell", "sd3", "zimage".
  std::string registry_name() const;
};

// A whole checkpoint or a bare diffusion model file, by its tensor names: the SD families from
// their embedders and UNet, the DiT families from their transformer blocks (original or diffusers
// naming, with or without "model.diffusion_model."). nullopt for anything else.
std::optional<DetectedFamily> detect_file_family(const TensorFile& file);

// How the file's weights are mostly stored: "fp8" when any matrix is float8 (fp8 checkpoints keep
// norms and biases wider), else the dtype of most of its bytes: "bf16", "fp16" or "fp32"; "" for
// other dtypes.
std::string stored_weight_dtype(const TensorFile& file);

// A diffusers pipeline folder (model_index.json and unet/ or transformer/ configs) or a bare
// diffusers transformer folder (config.json). nullopt for anything else.
std::optional<DetectedFamily> detect_folder_family(const std::string& dir);

}  // namespace df::engine
