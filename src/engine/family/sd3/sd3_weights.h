// Loading the SD3 MMDiT's weights, in Stability's original names, from a single checkpoint file
// or a diffusers folder.
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "engine/family/sd3/sd3_config.h"
#include "engine/tensor_file.h"
#include "engine/weights.h"

namespace df::engine::sd3 {

struct Sd3Checkpoint {
  Sd3Config config;
  Weights weights;  // original names, floating tensors in the requested dtype
};

// A single file in Stability's names: the bare MMDiT, or a checkpoint whose MMDiT tensors carry
// "model.diffusion_model." (its other tensors are skipped). The config is inferred from the
// tensors; floating tensors (fp8 ones included) are converted to `dtype`, ComfyUI's "scaled_fp8"
// weights dequantized (load_tensors_as). Throws Error(kUnsupported) when the file holds no SD3
// MMDiT.
Sd3Checkpoint read_sd3_single_file(const TensorFile& file, at::ScalarType dtype);

// A diffusers SD3Transformer2DModel folder: config.json and diffusion_pytorch_model.safetensors
// or its shards diffusion_pytorch_model-*.safetensors (variants such as .fp16 are not read).
// Throws Error(kIo) when the folder lacks them, Error(kCorruptFile) for missing, unexpected or
// misshapen tensors.
Sd3Checkpoint read_sd3_diffusers_folder(const std::string& dir, at::ScalarType dtype);

// read_sd3_diffusers_folder for a directory (or a pipeline directory holding "transformer/"),
// read_sd3_single_file for a file.
Sd3Checkpoint load_sd3_transformer(const std::string& path, at::ScalarType dtype);

// diffusers-named tensors in Stability's names (q/k/v concatenated, adaLN-continuous halves
// swapped). Throws Error(kCorruptFile) naming a missing or unexpected tensor.
TensorMap sd3_original_from_diffusers(const Sd3Config& config, const TensorMap& diffusers);

}  // namespace df::engine::sd3
