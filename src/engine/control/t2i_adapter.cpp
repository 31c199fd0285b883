// T2I adapter forward (pixel unshuffle, conv_in, stages of residual blocks), ComfyUI's placement of
// its features on the UNet, and reading adapter files in the original or diffusers layout.
#include "engine/control/t2i_adapter.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/key_index.h"
#include "engine/nn_ops.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

constexpr int kBlocksPerStage = 2;  // ComfyUI's nums_rb for full adapters
constexpr const char* kDiffusersMarker = "adapter.body.0.resnets.0.block1.weight";

// How an adapter file names its tensors.
enum class AdapterNaming { kOriginal, kDiffusersFull, kDiffusersLight };

std::string block_name(int index) { return "body." + std::to_string(index); }

bool xl_input_channels(int channels) { return channels == 256 || channels == 768; }

// ComfyUI's adapter Downsample without a convolution: 2x2 average pooling, padded by the odd
// remainder of each side.
at::Tensor average_halve(const at::Tensor& x) {
  return at::avg_pool2d(x, {2, 2}, {2, 2}, {x.size(2) % 2, x.size(3) % 2});
}

// The input block each stage's features go to (ComfyUI's list of features with None between
// them, popped once per input block).
std::vector<size_t> input_block_of_stage(size_t stages, bool xl) {
  std::vector<size_t> blocks;
  size_t position = 0;
  for (size_t stage = 0; stage < stages; ++stage) {
    position += xl ? (stage == 0 ? 3 : stage == 2 ? 2 : 1) : 2;
    blocks.push_back(position++);
  }
  return blocks;
}

AdapterNaming naming_of(const TensorFile& file) {
  if (!file.find(kDiffusersMarker)) return AdapterNaming::kOriginal;
  return file.find("adapter.conv_in.weight") ? AdapterNaming::kDiffusersFull
                                             : AdapterNaming::kDiffusersLight;
}

// Original or diffusers adapter names -> the original names (without a wrapping "adapter.").
std::optional<std::string> original_name(const std::string& key, AdapterNaming naming) {
  std::string name = key.starts_with("adapter.") ? key.substr(8) : key;
  const auto parts = split_dots(name);
  if (naming == AdapterNaming::kOriginal || parts.size() < 3 || parts[0] != "body") return name;
  const auto stage = parse_index(parts[1]);
  if (!stage) return std::nullopt;
  const bool light = naming == AdapterNaming::kDiffusersLight;
  if (parts.size() >= 5 && parts[2] == "resnets") {
    const auto block = parse_index(parts[3]);
    if (!block) return std::nullopt;
    const std::string rest = "." + join_from(parts, 4);
    if (light) return block_name(*stage) + ".body." + parts[3] + rest;
    return block_name(*stage * kBlocksPerStage + *block) + rest;
  }
  return block_name(light ? *stage : *stage * kBlocksPerStage) + "." + join_from(parts, 2);
}

int dim_of(const TensorMap& w, const std::string& name, int64_t index, const std::string& path) {
  const auto it = w.find(name);
  if (it == w.end() || it->second.dim() != 4) {
    throw Error(ErrorCode::kCorruptFile,
                "'" + path + "' lacks the T2I adapter convolution '" + name + "'");
  }
  return static_cast<int>(it->second.size(index));
}

// ComfyUI's Adapter_light: stages of in_conv, residual blocks and out_conv, no conv_in.
T2IAdapterConfig infer_light_config(const TensorMap& w, const std::string& path) {
  T2IAdapterConfig c;
  c.unshuffled_channels = dim_of(w, block_name(0) + ".in_conv.weight", 1, path);
  while (w.count(block_name(0) + ".body." + std::to_string(c.light_blocks) + ".block1.weight")) {
    ++c.light_blocks;
  }
  for (int stage = 0; w.count(block_name(stage) + ".out_conv.weight"); ++stage) {
    c.channels.push_back(dim_of(w, block_name(stage) + ".out_conv.weight", 0, path));
  }
  if (c.light_blocks == 0) {
    throw Error(ErrorCode::kCorruptFile,
                "'" + path + "' lacks the light adapter's residual blocks");
  }
  return c;
}

T2IAdapterConfig infer_config(const TensorMap& w, const std::string& path) {
  if (!w.count("conv_in.weight")) return infer_light_config(w, path);
  T2IAdapterConfig c;
  c.unshuffled_channels = dim_of(w, "conv_in.weight", 1, path);
  c.xl = xl_input_channels(c.unshuffled_channels);
  c.kernel = dim_of(w, block_name(0) + ".block2.weight", 2, path);
  for (int stage = 0;; ++stage) {
    const std::string first_block = block_name(stage * kBlocksPerStage) + ".block1.weight";
    if (!w.count(first_block)) break;
    c.channels.push_back(dim_of(w, first_block, 0, path));
  }
  for (const auto& [name, tensor] : w) {
    if (name.ends_with("down_opt.op.weight")) c.conv_downsample = true;
  }
  return c;
}

}  // namespace

T2IAdapter::T2IAdapter(T2IAdapterConfig config, Weights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  if (config_.channels.empty()) {
    throw Error(ErrorCode::kCorruptFile, "T2I adapter weights: no stages (body.0)");
  }
  config_.light_blocks > 0 ? check_light_weights() : check_full_weights();
}

void T2IAdapter::check_light_weights() const {
  int64_t in = config_.unshuffled_channels;
  for (size_t stage = 0; stage < config_.channels.size(); ++stage) {
    const Weights s = weights_.sub(block_name(static_cast<int>(stage)));
    const int64_t inner = s.get("in_conv.weight").size(0);
    nn::require_shape(s, "in_conv.weight", {inner, in, 1, 1});
    for (int j = 0; j < config_.light_blocks; ++j) {
      const Weights block = s.sub("body." + std::to_string(j));
      nn::require_shape(block, "block1.weight", {inner, inner, 3, 3});
      nn::require_shape(block, "block2.weight", {inner, inner, 3, 3});
    }
    nn::require_shape(s, "out_conv.weight", {config_.channels[stage], inner, 1, 1});
    in = config_.channels[stage];
  }
}

void T2IAdapter::check_full_weights() const {
  nn::require_shape(weights_, "conv_in.weight",
                    {config_.channels[0], config_.unshuffled_channels, 3, 3});
  const int64_t k = config_.kernel;
  for (int stage = 0; stage < static_cast<int>(config_.channels.size()); ++stage) {
    const int64_t c = config_.channels[stage];
    const int64_t previous = config_.channels[std::max(stage - 1, 0)];
    const Weights first = weights_.sub(block_name(stage * kBlocksPerStage));
    if (downsamples(stage) && config_.conv_downsample) {
      nn::require_shape(first, "down_opt.op.weight", {previous, previous, 3, 3});
    }
    if (previous != c) nn::require_shape(first, "in_conv.weight", {c, previous, k, k});
    for (int j = 0; j < kBlocksPerStage; ++j) {
      const Weights block = weights_.sub(block_name(stage * kBlocksPerStage + j));
      nn::require_shape(block, "block1.weight", {c, c, 3, 3});
      nn::require_shape(block, "block2.weight", {c, c, k, k});
    }
  }
}

bool T2IAdapter::downsamples(int stage) const {
  return stage > 0 && !(config_.xl && stage == 1);
}

at::Tensor T2IAdapter::stage_block(int index, bool down, const at::Tensor& x_in) const {
  const Weights block = weights_.sub(block_name(index));
  at::Tensor x = x_in;
  if (down) {
    x = config_.conv_downsample ? nn::conv2d(block.sub("down_opt.op"), x, 2, 1) : average_halve(x);
  }
  const int64_t padding = config_.kernel / 2;
  if (block.has("in_conv.weight")) x = nn::conv2d(block.sub("in_conv"), x, 1, padding);
  at::Tensor h = at::relu(nn::conv2d(block.sub("block1"), x, 1, 1));
  return nn::conv2d(block.sub("block2"), h, 1, padding) + x;
}

at::Tensor T2IAdapter::light_stage(int stage, const at::Tensor& x_in) const {
  const Weights s = weights_.sub(block_name(stage));
  at::Tensor x = nn::conv2d(s.sub("in_conv"), stage > 0 ? average_halve(x_in) : x_in, 1, 0);
  for (int j = 0; j < config_.light_blocks; ++j) {
    const Weights block = s.sub("body." + std::to_string(j));
    const at::Tensor h = at::relu(nn::conv2d(block.sub("block1"), x, 1, 1));
    x = nn::conv2d(block.sub("block2"), h, 1, 1) + x;
  }
  return nn::conv2d(s.sub("out_conv"), x, 1, 0);
}

std::vector<at::Tensor> T2IAdapter::features(const at::Tensor& hint) const {
  at::NoGradGuard no_grad;
  const bool light = config_.light_blocks > 0;
  const at::Tensor& first =
      weights_.get(light ? block_name(0) + ".in_conv.weight" : "conv_in.weight");
  at::Tensor x = at::pixel_unshuffle(hint.to(first.options()), config_.unshuffle());
  if (x.size(1) != config_.unshuffled_channels) {
    throw Error(ErrorCode::kInvalidArgument,
                "the T2I adapter takes a hint of " + std::to_string(config_.hint_channels()) +
                    " channels, not " + std::to_string(hint.size(1)));
  }
  if (!light) x = nn::conv2d(weights_.sub("conv_in"), x, 1, 1);
  std::vector<at::Tensor> out;
  for (int stage = 0; stage < static_cast<int>(config_.channels.size()); ++stage) {
    if (light) {
      x = light_stage(stage, x);
    } else {
      for (int j = 0; j < kBlocksPerStage; ++j) {
        x = stage_block(stage * kBlocksPerStage + j, j == 0 && downsamples(stage), x);
      }
    }
    out.push_back(x);
  }
  return out;
}

std::vector<at::Tensor> T2IAdapter::features_of_last_hint(const at::Tensor& hint) const {
  const std::lock_guard<std::mutex> lock(last_mutex_);
  const bool same = last_hint_.defined() && last_hint_.sizes() == hint.sizes() &&
                    last_hint_.scalar_type() == hint.scalar_type() &&
                    last_hint_.device() == hint.device() && at::equal(last_hint_, hint);
  if (!same) {
    last_features_ = features(hint);
    last_hint_ = hint;
  }
  return last_features_;
}

UNetControl T2IAdapter::control_of(const std::vector<at::Tensor>& features) const {
  UNetControl control;
  const auto blocks = input_block_of_stage(features.size(), config_.xl);
  const size_t on_input = config_.xl ? features.size() - 1 : features.size();
  for (size_t stage = 0; stage < on_input; ++stage) {
    if (control.input.size() <= blocks[stage]) control.input.resize(blocks[stage] + 1);
    control.input[blocks[stage]] = features[stage];
  }
  if (config_.xl) control.middle = features.back();
  return control;
}

UNetControl T2IAdapter::control(const ControlCall& call, const HintAtSize& hint_at) const {
  const int64_t unshuffle = config_.unshuffle();
  const auto rounded_up = [&](int64_t latent) {
    return (latent * 8 + unshuffle - 1) / unshuffle * unshuffle;
  };
  at::Tensor hint = hint_at(rounded_up(call.sample.size(3)), rounded_up(call.sample.size(2)));
  if (config_.hint_channels() == 1 && hint.size(1) > 1) hint = hint.mean(1, /*keepdim=*/true);
  const int64_t batch = call.sample.size(0);
  std::vector<at::Tensor> stages =
      features_of_last_hint(hint_for_batch(hint, batch, call.conditionings));
  for (at::Tensor& stage : stages) stage = stage.expand({batch, -1, -1, -1});  // a hint batch of 1
  return control_of(stages);
}

bool is_t2i_adapter(const TensorFile& file) {
  const KeyIndex keys(file);
  for (const std::string prefix : {"", "adapter."}) {
    if (keys.has(prefix + "body.0.in_conv.weight") ||
        (keys.has(prefix + "conv_in.weight") && keys.has(prefix + "body.0.block2.weight"))) {
      return true;
    }
  }
  return keys.has(kDiffusersMarker);
}

std::shared_ptr<const T2IAdapter> load_t2i_adapter(const std::string& path,
                                                   const std::string& device,
                                                   const std::string& dtype) {
  if (!std::filesystem::exists(path)) {
    throw Error(ErrorCode::kModelNotFound, "T2I adapter '" + path + "' not found");
  }
  const TensorFile file = TensorFile::open(path);
  if (!is_t2i_adapter(file)) {
    throw Error(ErrorCode::kUnsupported, "'" + path + "' holds no T2I adapter");
  }
  const AdapterNaming naming = naming_of(file);
  TensorMap tensors = load_tensors_as(file, at::kFloat, [&](const std::string& key) {
    return original_name(key, naming);
  });
  T2IAdapterConfig config = infer_config(tensors, path);
  const Family family = config.xl ? Family::kSDXL : Family::kSD1;
  const RuntimePlacement placement = resolve_placement(device, dtype, family);
  Weights weights(std::move(tensors));
  weights.to(placement.dtype, placement.device);
  return std::make_shared<const T2IAdapter>(std::move(config), std::move(weights));
}

}  // namespace df::engine
