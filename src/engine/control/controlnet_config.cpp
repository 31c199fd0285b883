// diffusers ControlNetModel config.json reading and writing.
#include "engine/control/controlnet_config.h"

#include <string>

#include "core/error.h"

namespace df::engine {
namespace {

// The diffusers config with the fields UNetConfig::from_json needs that a ControlNet lacks.
nlohmann::json as_unet_json(nlohmann::json config) {
  if (!config.contains("up_block_types")) {
    const size_t blocks = config.at("block_out_channels").size();
    config["up_block_types"] = std::vector<std::string>(blocks, "UpBlock2D");
  }
  return config;
}

bool is_down_path_tensor(const std::string& name) {
  for (const char* part : {"conv_in.", "time_embedding.", "add_embedding.", "down_blocks.", "mid_block."}) {
    if (name.starts_with(part)) return true;
  }
  return false;
}

// The channels of every skip of the down path, in order.
std::vector<int64_t> skip_channels(const UNetConfig& config) {
  const auto& channels = config.block_out_channels;
  std::vector<int64_t> skips = {channels.front()};
  for (size_t level = 0; level < channels.size(); ++level) {
    skips.insert(skips.end(), config.layers_per_block, channels[level]);
    if (level + 1 < channels.size()) skips.push_back(channels[level]);
  }
  return skips;
}

}  // namespace

ControlNetConfig ControlNetConfig::from_json(const nlohmann::json& config) {
  ControlNetConfig c;
  try {
    c.unet = UNetConfig::from_json(as_unet_json(config));
    c.conditioning_channels = config.value("conditioning_channels", 3);
    c.global_pool_conditions = config.value("global_pool_conditions", false);
    if (config.contains("conditioning_embedding_out_channels")) {
      c.conditioning_embedding_out_channels =
          config.at("conditioning_embedding_out_channels").get<std::vector<int>>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kCorruptFile, std::string("ControlNet config: ") + e.what());
  }
  if (c.conditioning_embedding_out_channels.empty()) {
    throw Error(ErrorCode::kCorruptFile, "ControlNet config: no hint encoder channels");
  }
  return c;
}

nlohmann::json ControlNetConfig::to_json() const {
  nlohmann::json c = unet.to_json();
  c["_class_name"] = "ControlNetModel";
  c.erase("up_block_types");
  c.erase("out_channels");
  c["conditioning_channels"] = conditioning_channels;
  c["global_pool_conditions"] = global_pool_conditions;
  c["conditioning_embedding_out_channels"] = conditioning_embedding_out_channels;
  return c;
}

std::vector<TensorShape> controlnet_tensor_layout(const ControlNetConfig& config) {
  UNetConfig whole = config.unet;
  whole.up_block_types.assign(whole.block_out_channels.size(), "UpBlock2D");
  std::vector<TensorShape> layout;
  for (TensorShape& shape : unet_tensor_layout(whole)) {
    if (is_down_path_tensor(shape.name)) layout.push_back(std::move(shape));
  }
  const auto& hint = config.conditioning_embedding_out_channels;
  const std::string embedding = "controlnet_cond_embedding.";
  add_conv_shapes(layout, embedding + "conv_in", hint[0], config.conditioning_channels, 3);
  for (size_t i = 0; i + 1 < hint.size(); ++i) {
    add_conv_shapes(layout, embedding + "blocks." + std::to_string(2 * i), hint[i], hint[i], 3);
    add_conv_shapes(layout, embedding + "blocks." + std::to_string(2 * i + 1), hint[i + 1], hint[i], 3);
  }
  add_conv_shapes(layout, embedding + "conv_out", whole.block_out_channels.front(), hint.back(), 3);
  const std::vector<int64_t> skips = skip_channels(whole);
  for (size_t i = 0; i < skips.size(); ++i) {
    add_conv_shapes(layout, "controlnet_down_blocks." + std::to_string(i), skips[i], skips[i], 1);
  }
  const int64_t deepest = whole.block_out_channels.back();
  add_conv_shapes(layout, "controlnet_mid_block", deepest, deepest, 1);
  return layout;
}

}  // namespace df::engine
