// Z-Image transformer weights in the ComfyUI naming, from ComfyUI/original single files or
// diffusers transformer folders, and converted to the diffusers naming.
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "engine/family/zimage/zimage_config.h"
#include "engine/weights.h"

namespace df::engine::zimage {

// ComfyUI-named tensors from diffusers-named ones: to_q, to_k and to_v concatenated (rows) into
// attention.qkv, everything else renamed. Throws Error(kCorruptFile) when a qkv has a part
// missing.
TensorMap comfy_weights_from_diffusers(const TensorMap& diffusers);

// The inverse: attention.qkv narrowed into to_q/to_k/to_v by `config`'s head counts.
TensorMap diffusers_weights_from_comfy(const TensorMap& comfy, const ZImageConfig& config);

// The transformer tensors of `path` in the ComfyUI naming, floating tensors as `dtype`: a single
// weights file in the ComfyUI/original naming (a full checkpoint's "model.diffusion_model."
// tensors only) or in the diffusers naming, or a diffusers transformer folder
// (diffusion_pytorch_model.safetensors or its shards). Throws Error(kIo) / Error(kCorruptFile) as
// TensorFile::open does, and Error(kModelNotFound) for a folder without those files.
TensorMap load_zimage_weights(const std::string& path, at::ScalarType dtype);

// The config of the weights `load_zimage_weights(path)` gave: a diffusers folder's config.json
// when there is one, else inferred from the tensor shapes.
ZImageConfig zimage_config_for(const std::string& path, const TensorMap& weights);

}  // namespace df::engine::zimage
