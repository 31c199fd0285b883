// Writes tiny ControlNets in the original single-file layout for the tiny test pipelines.
#include "engine/tiny_controlnet.h"

#include <optional>
#include <vector>

#include "engine/adapters/lora_names.h"
#include "engine/key_index.h"
#include "engine/tiny_addons.h"
#include "engine/tiny_model.h"

namespace df::engine {
namespace {

constexpr const char* kPrefix = "control_model.";
// The hint encoder and zero convolutions are drawn wider than the pipelines' 0.02 so that the
// control visibly changes tiny images (trained zero convolutions are far from zero too).
constexpr double kControlStd = 0.1;

bool is_control_tensor(const std::string& name) {
  return name.starts_with("controlnet_");
}

// The original name of a diffusers ControlNet tensor (the inverse of the loader's conversion).
std::string original_name(const std::string& name, const ControlNetConfig& config) {
  const auto parts = split_dots(name);
  if (parts[0] == "controlnet_cond_embedding") {
    // conv_in is 0, blocks.k is 2k + 2 and conv_out follows the 2 (n - 1) blocks.
    const int blocks = 2 * static_cast<int>(config.conditioning_embedding_out_channels.size() - 1);
    const int last = 2 * blocks + 2;
    const int index = parts[1] == "conv_in"    ? 0
                      : parts[1] == "conv_out" ? last
                                               : 2 * std::stoi(parts[2]) + 2;
    return "input_hint_block." + std::to_string(index) + "." + parts.back();
  }
  if (parts[0] == "controlnet_down_blocks") return "zero_convs." + parts[1] + ".0." + parts[2];
  if (parts[0] == "controlnet_mid_block") return "middle_block_out.0." + parts[1];
  UNetConfig whole = config.unet;
  whole.up_block_types.assign(whole.block_out_channels.size(), "UpBlock2D");
  return diffusers_unet_key_to_ldm(name, whole).value_or(name);
}

}  // namespace

ControlNetConfig tiny_controlnet_config(Family family) {
  ControlNetConfig config;
  config.unet = tiny_pipeline_config(family).unet;
  config.conditioning_embedding_out_channels = {16, 16, 32, 32};
  return config;
}

void write_tiny_controlnet(const std::string& path, Family family, uint64_t seed) {
  const ControlNetConfig config = tiny_controlnet_config(family);
  std::vector<TensorShape> down_path, control;
  for (TensorShape& shape : controlnet_tensor_layout(config)) {
    (is_control_tensor(shape.name) ? control : down_path).push_back(std::move(shape));
  }
  std::vector<RawTensor> tensors = tiny_random_tensors(down_path, seed);
  for (RawTensor& tensor : tiny_random_tensors(control, seed + 1, kControlStd)) {
    tensors.push_back(std::move(tensor));
  }
  for (RawTensor& tensor : tensors) tensor.name = kPrefix + original_name(tensor.name, config);
  write_test_file(path, "ControlNet", std::move(tensors),
                  {{kControlNetConfigMetadata, config.to_json().dump()}});
}

}  // namespace df::engine
