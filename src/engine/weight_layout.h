// The diffusers/transformers tensor names and shapes of each SD model component, given its config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model_config.h"

namespace df::engine {

struct TensorShape {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor of a diffusers UNet2DConditionModel state dict, in module order. Throws
// Error(kUnsupported) for block types other than (CrossAttn)Down/UpBlock2D and
// Error(kInvalidArgument) for inconsistent per-block lists.
std::vector<TensorShape> unet_tensor_layout(const UNetConfig& config);

// Every tensor of a diffusers AutoencoderKL state dict, in module order.
std::vector<TensorShape> vae_tensor_layout(const VaeConfig& config);

// Every tensor of a transformers CLIPTextModel ("text_model." names), plus "text_projection.weight"
// for CLIPTextModelWithProjection.
std::vector<TensorShape> clip_text_tensor_layout(const ClipTextConfig& config);

}  // namespace df::engine
