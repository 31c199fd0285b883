// Tensor names and shapes of a Z-Image transformer in the ComfyUI naming (the one Comfy-Org's
// repackaged z_image_turbo_bf16.safetensors uses) and the map to diffusers'
// ZImageTransformer2DModel naming, which stores the fused attention.qkv as to_q/to_k/to_v.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/family/zimage/zimage_config.h"
#include "engine/safetensors_file.h"
#include "engine/weight_layout.h"

namespace df::engine::zimage {

// Every tensor in the ComfyUI naming, without the "model.diffusion_model." prefix of full
// checkpoints, in module order.
std::vector<TensorShape> zimage_transformer_layout(const ZImageConfig& config);

// The same tensors in the diffusers naming.
std::vector<TensorShape> zimage_diffusers_layout(const ZImageConfig& config);

// `name` without the "model.diffusion_model." prefix ComfyUI's full checkpoints use.
std::string strip_checkpoint_prefix(const std::string& name);

// Whether state-dict names are in the diffusers naming (they hold "all_x_embedder.").
bool has_diffusers_names(const std::vector<std::string>& names);

// Where a diffusers tensor goes in the ComfyUI naming: its name there and, for to_q/to_k/to_v,
// which of the three row blocks of the fused attention.qkv it fills (-1 for a whole tensor).
struct ComfyPlace {
  std::string name;
  int qkv_part = -1;
};
ComfyPlace comfy_place_of_diffusers_name(const std::string& diffusers_name);

// A ComfyUI-named tensor's diffusers tensors: their names and how many leading rows each takes
// (the qkv weight splits into to_q, to_k and to_v; every other tensor maps whole, rows = its
// first dimension, 0 for scalars).
struct DiffusersPart {
  std::string name;
  int64_t rows = 0;
};
std::vector<DiffusersPart> diffusers_parts_of(const TensorShape& comfy_tensor,
                                              const ZImageConfig& config);

// ComfyUI-named raw tensors (e.g. tiny_random_tensors of zimage_transformer_layout) in the
// diffusers naming, qkv rows split, for writing a folder diffusers loads. Throws
// Error(kInvalidArgument) for a tensor whose bytes do not match its shape.
std::vector<RawTensor> raw_tensors_to_diffusers(const std::vector<RawTensor>& tensors,
                                                const ZImageConfig& config);

}  // namespace df::engine::zimage
