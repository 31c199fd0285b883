// FLUX.1 transformer weights from any supported layout, in BFL naming, with their config.
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "engine/family/flux/flux_config.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/weights.h"

namespace df::engine::flux {

struct FluxTransformerWeights {
  FluxConfig config;
  TensorMap tensors;  // BFL names, floating tensors in the requested dtype
};

// The tensors a plan (flux_bfl_from_diffusers / flux_diffusers_from_bfl) builds from `source`,
// concatenated along dim 0. Throws Error(kCorruptFile) naming a missing source tensor or a slice
// past its rows.
TensorMap assemble_tensors(const TensorMap& source, const std::vector<TensorAssembly>& plan);

// One weights file: BFL names (flux1-dev/schnell.safetensors, ComfyUI's diffusion_models files),
// the same under a "model.diffusion_model." (or any other) prefix, as in full checkpoints whose
// other tensors are skipped, or a FluxTransformer2DModel state dict in diffusers names. The config
// is inferred from the shapes. Throws Error(kCorruptFile) for a file that holds no FLUX
// transformer, Error(kUnsupported) for BFL-named transformers other than FLUX.1 (no vector_in:
// FLUX.2, Chroma), plus TensorFile::open's errors.
FluxTransformerWeights flux_keys_from_file(const std::string& path, at::ScalarType dtype);

// A diffusers FluxTransformer2DModel folder (the pipeline's transformer/, or the pipeline folder
// itself): config.json plus diffusion_pytorch_model.safetensors or its sharded
// .safetensors.index.json. Throws Error(kCorruptFile) for a missing or malformed config, index or
// shard.
FluxTransformerWeights load_flux_diffusers_folder(const std::string& dir, at::ScalarType dtype);

// A folder (load_flux_diffusers_folder) or a file (flux_keys_from_file).
FluxTransformerWeights load_flux_transformer(const std::string& path, at::ScalarType dtype);

}  // namespace df::engine::flux
