// FLUX.1 transformer tensors in BFL naming and the row-level key map to and from diffusers' names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/family/flux/flux_config.h"
#include "engine/safetensors_file.h"
#include "engine/weight_layout.h"

namespace df::engine::flux {

// Every tensor of a FLUX.1 transformer in BFL's naming (flux1-dev.safetensors, ComfyUI's
// diffusion_models files without their "model.diffusion_model." prefix), in module order.
std::vector<TensorShape> flux_transformer_layout(const FluxConfig& config);

// `rows` rows of tensor `source` from `first_row` on (along dim 0).
struct RowSlice {
  std::string source;
  int64_t first_row = 0;
  int64_t rows = 0;
};

// Tensor `target` is the concatenation of `parts` along dim 0.
struct TensorAssembly {
  std::string target;
  std::vector<RowSlice> parts;
};

// How to build each BFL-named tensor from a FluxTransformer2DModel state dict and back. diffusers
// splits the fused projections (a double block's qkv into to_q/to_k/to_v or add_*_proj, a single
// block's linear1 into to_q/to_k/to_v and proj_mlp) and stores the final modulation as
// (scale, shift) where BFL has (shift, scale); everything else is a rename.
std::vector<TensorAssembly> flux_bfl_from_diffusers(const FluxConfig& config);
std::vector<TensorAssembly> flux_diffusers_from_bfl(const FluxConfig& config);

// The config of a FluxTransformer2DModel state dict (diffusers names), as
// FluxConfig::infer_from_keys infers it from BFL names.
FluxConfig infer_from_diffusers_keys(const KeyShapes& shapes);

// The shapes of the tensors a plan builds from tensors of `source` shapes. Throws
// Error(kCorruptFile) naming a missing source tensor.
std::vector<TensorShape> assembled_layout(const std::vector<TensorShape>& source,
                                          const std::vector<TensorAssembly>& plan);

// The tensors a plan builds from `source` (row-major bytes, so slices along dim 0 are byte
// ranges). Throws Error(kCorruptFile) for a missing source tensor, a slice past its rows or parts
// of different dtypes or row shapes.
std::vector<RawTensor> assemble_raw(const std::vector<RawTensor>& source,
                                    const std::vector<TensorAssembly>& plan);

}  // namespace df::engine::flux
