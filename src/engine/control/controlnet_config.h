// diffusers ControlNetModel's config (torch-free: the tiny-model writer uses it too).
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model_config.h"
#include "engine/weight_layout.h"

namespace df::engine {

// Metadata key under which a single ControlNet file may carry its diffusers config.json as JSON
// text; used instead of the config inferred from shapes (which assumes the SD families' heads).
inline constexpr const char* kControlNetConfigMetadata = "dreamforge.controlnet_config";

// The down path as a UNet config (its up_block_types and out_channels are unused) and the hint
// encoder's channels: conv_in to the first, then two convolutions per further entry, the second of
// each halving the size (3 halvings for the SD families' 8x latents).
struct ControlNetConfig {
  UNetConfig unet;
  int conditioning_channels = 3;
  std::vector<int> conditioning_embedding_out_channels = {16, 32, 96, 256};
  // Shuffle ControlNets: every residual is its spatial mean (diffusers' global_pool_conditions).
  bool global_pool_conditions = false;

  // Throws Error(kCorruptFile) for a config that is not a ControlNet's.
  static ControlNetConfig from_json(const nlohmann::json& config);
  nlohmann::json to_json() const;
};

// Every tensor of a diffusers ControlNetModel state dict (diffusers names).
std::vector<TensorShape> controlnet_tensor_layout(const ControlNetConfig& config);

}  // namespace df::engine
