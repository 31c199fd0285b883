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

// Appends the tensors of common layers under `name`: a convolution's weight [out, in, kernel,
// kernel] and bias [out]; a linear layer's weight [out, in] (and bias [out]); a GroupNorm's or
// LayerNorm's weight and bias [channels].
void add_conv_shapes(std::vector<TensorShape>& layout, const std::string& name, int64_t out,
                     int64_t in, int64_t kernel);
void add_linear_shapes(std::vector<TensorShape>& layout, const std::string& name, int64_t out,
                       int64_t in, bool bias = true);
void add_norm_shapes(std::vector<TensorShape>& layout, const std::string& name, int64_t channels);

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
