// Writing SD3 MMDiT weights as a diffusers SD3Transformer2DModel folder (torch-free; create-tiny).
#pragma once

#include <string>
#include <vector>

#include "engine/family/sd3/sd3_config.h"
#include "engine/safetensors_file.h"

namespace df::engine::sd3 {

// Writes `original` (Stability's names, e.g. tiny_random_tensors(sd3_transformer_layout(config),
// seed)) into `dir` as config.json and diffusion_pytorch_model.safetensors, which diffusers'
// SD3Transformer2DModel.from_pretrained loads. Creates `dir`. Throws Error(kCorruptFile) when the
// tensors do not fit `config`, Error(kIo) when the files cannot be written.
void write_sd3_diffusers_transformer(const std::string& dir, const Sd3Config& config,
                                     const std::vector<RawTensor>& original);

}  // namespace df::engine::sd3
