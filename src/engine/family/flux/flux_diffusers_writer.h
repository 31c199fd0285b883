// Writing FLUX.1 transformer weights as a diffusers FluxTransformer2DModel folder (torch-free).
#pragma once

#include <string>
#include <vector>

#include "engine/family/flux/flux_config.h"
#include "engine/safetensors_file.h"

namespace df::engine::flux {

// Writes `bfl` (BFL names, e.g. tiny_random_tensors(flux_transformer_layout(config), seed)) into
// `dir` as config.json and diffusion_pytorch_model.safetensors, which diffusers'
// FluxTransformer2DModel.from_pretrained loads. Creates `dir`. Throws Error(kCorruptFile) when a
// tensor of `config` is missing, Error(kIo) when the files cannot be written.
void write_flux_diffusers_transformer(const std::string& dir, const FluxConfig& config,
                                      const std::vector<RawTensor>& bfl);

}  // namespace df::engine::flux
