// CLIP vision transformer: patch embedding, class and position embeddings, pre-LN encoder,
// post-LN class token and visual projection; open_clip weights renamed onto transformers names.
#include "engine/clip_vision.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/checkpoint.h"
#include "engine/checkpoint_bundle.h"
#include "engine/clip_layers.h"
#include "engine/nn_ops.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

constexpr const char* kOpenClipMarker = "transformer.resblocks.0.attn.in_proj_weight";
constexpr const char* kTransformersMarker = "vision_model.embeddings.class_embedding";

// open_clip tensor names (after the tower's prefix) -> transformers names.
std::optional<std::string> open_clip_name(const std::string& name) {
  static const std::map<std::string, std::string> whole = {
      {"class_embedding", "vision_model.embeddings.class_embedding"},
      {"conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
      {"positional_embedding", "vision_model.embeddings.position_embedding.weight"},
      {"ln_pre.weight", "vision_model.pre_layrnorm.weight"},
      {"ln_pre.bias", "vision_model.pre_layrnorm.bias"},
      {"ln_post.weight", "vision_model.post_layernorm.weight"},
      {"ln_post.bias", "vision_model.post_layernorm.bias"},
      {"proj", "visual_projection.weight"}};
  if (auto it = whole.find(name); it != whole.end()) return it->second;
  const std::string blocks = "transformer.resblocks.";
  if (!name.starts_with(blocks)) return std::nullopt;
  const size_t dot = name.find('.', blocks.size());
  if (dot == std::string::npos) return std::nullopt;
  const std::string layer = "vision_model.encoder.layers." + name.substr(blocks.size(), dot - blocks.size()) + ".";
  const std::string part = name.substr(dot + 1);
  static const std::map<std::string, std::string> parts = {
      {"ln_1.", "layer_norm1."},          {"ln_2.", "layer_norm2."},
      {"attn.out_proj.", "self_attn.out_proj."}, {"mlp.c_fc.", "mlp.fc1."},
      {"mlp.c_proj.", "mlp.fc2."},        {"attn.in_proj_", "self_attn.in_proj_"}};
  for (const auto& [from, to] : parts) {
    if (part.starts_with(from)) return layer + to + part.substr(from.size());
  }
  return std::nullopt;
}

// Splits every merged "self_attn.in_proj_{weight,bias}" into q_proj, k_proj and v_proj, and
// transposes the projection ([hidden, proj] in open_clip) to a linear weight.
void finish_open_clip_tensors(TensorMap& tensors) {
  std::vector<std::string> merged;
  for (const auto& [name, tensor] : tensors) {
    if (name.find(".self_attn.in_proj_") != std::string::npos) merged.push_back(name);
  }
  for (const std::string& name : merged) {
    const size_t at = name.find("in_proj_");
    const std::string stem = name.substr(0, at);
    const std::string kind = name.substr(at + std::string("in_proj_").size());
    const std::vector<at::Tensor> pieces = tensors.at(name).chunk(3, 0);
    if (pieces.size() != 3) {
      throw Error(ErrorCode::kCorruptFile, "'" + name + "' does not split into q, k and v");
    }
    const char* projections[] = {"q_proj.", "k_proj.", "v_proj."};
    for (int i = 0; i < 3; ++i) tensors[stem + projections[i] + kind] = pieces[i].contiguous();
    tensors.erase(name);
  }
  if (auto it = tensors.find("visual_projection.weight"); it != tensors.end()) {
    it->second = it->second.t().contiguous();
  }
}

int64_t count_layers(const Weights& weights) {
  int64_t layers = 0;
  while (weights.has("vision_model.encoder.layers." + std::to_string(layers) +
                     ".layer_norm1.weight")) {
    ++layers;
  }
  return layers;
}

int64_t heads_for(int64_t hidden) {
  if (hidden == 1280 || hidden == 1664) return 16;  // ViT-H/14, ViT-bigG/14
  if (hidden % 64 != 0) {
    throw Error(ErrorCode::kUnsupported,
                "CLIP vision width " + std::to_string(hidden) + " is not a known tower's");
  }
  return hidden / 64;
}

}  // namespace

ClipVisionConfig detect_clip_vision_config(const Weights& weights) {
  if (!weights.has(kTransformersMarker) || !weights.has("visual_projection.weight")) {
    throw Error(ErrorCode::kCorruptFile,
                "the file holds no CLIP vision model (no class embedding or visual projection)");
  }
  ClipVisionConfig c;
  c.hidden_size = weights.get(kTransformersMarker).size(0);
  const at::Tensor& patch = weights.get("vision_model.embeddings.patch_embedding.weight");
  c.patch_size = patch.size(2);
  const int64_t positions = weights.get("vision_model.embeddings.position_embedding.weight").size(0);
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(double(positions - 1))));
  if (grid * grid != positions - 1) {
    throw Error(ErrorCode::kCorruptFile, "CLIP vision position embeddings (" +
                                             std::to_string(positions) +
                                             ") are not a square grid plus the class token");
  }
  c.image_size = grid * c.patch_size;
  c.num_hidden_layers = count_layers(weights);
  if (c.num_hidden_layers < 2) {
    throw Error(ErrorCode::kCorruptFile, "CLIP vision model has fewer than 2 encoder layers");
  }
  c.intermediate_size = weights.get("vision_model.encoder.layers.0.mlp.fc1.weight").size(0);
  c.projection_dim = weights.get("visual_projection.weight").size(0);
  c.num_attention_heads = heads_for(c.hidden_size);
  c.hidden_act = c.num_hidden_layers == 32 || c.num_hidden_layers == 48 ? "gelu" : "quick_gelu";
  return c;
}

std::optional<std::string> find_clip_vision_prefix(const TensorFile& file) {
  if (file.find(kTransformersMarker) != nullptr) return "";
  const std::string marker = kOpenClipMarker;
  for (const auto& info : file.tensors()) {
    if (info.name.ends_with(marker) &&
        file.find(info.name.substr(0, info.name.size() - marker.size()) + "conv1.weight")) {
      return info.name.substr(0, info.name.size() - marker.size());
    }
  }
  return std::nullopt;
}

TensorMap read_clip_vision_weights(const TensorFile& file, at::ScalarType dtype) {
  const std::optional<std::string> prefix = find_clip_vision_prefix(file);
  if (!prefix) {
    throw Error(ErrorCode::kCorruptFile,
                "'" + file.path() + "' holds no CLIP vision model (transformers or open_clip names)",
                {{"path", file.path()}});
  }
  if (prefix->empty()) {
    return load_tensors_as(file, dtype, [](const std::string& name) -> std::optional<std::string> {
      if (name.starts_with("vision_model.") || name == "visual_projection.weight") return name;
      return std::nullopt;
    });
  }
  const std::string p = *prefix;
  TensorMap tensors = load_tensors_as(file, dtype, [p](const std::string& name) {
    return name.starts_with(p) ? open_clip_name(name.substr(p.size())) : std::nullopt;
  });
  finish_open_clip_tensors(tensors);
  return tensors;
}

at::Tensor clip_preprocess(const at::Tensor& images, int64_t size, bool center_crop) {
  if (images.dim() != 4 || images.size(3) < 3 || images.size(1) < 1 || images.size(2) < 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "CLIP vision input must be [batch, height, width, channels>=3] images");
  }
  at::Tensor x = images.narrow(3, 0, 3).to(at::kFloat).permute({0, 3, 1, 2}).contiguous();
  const int64_t height = x.size(2), width = x.size(3);
  if (height != size || width != size) {
    std::vector<int64_t> target = {size, size};
    if (center_crop) {
      const double scale = double(size) / double(std::min(height, width));
      target = {int64_t(std::nearbyint(scale * height)), int64_t(std::nearbyint(scale * width))};
    }
    x = at::_upsample_bicubic2d_aa(x, target, /*align_corners=*/false);
    const int64_t top = (x.size(2) - size) / 2, left = (x.size(3) - size) / 2;
    x = x.narrow(2, top, size).narrow(3, left, size);
  }
  x = (x * 255.0).clamp(0, 255).round() / 255.0;
  const at::Tensor mean = at::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view({1, 3, 1, 1});
  const at::Tensor std = at::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view({1, 3, 1, 1});
  return (x - mean) / std;
}

ClipVisionModel::ClipVisionModel(ClipVisionConfig config, Weights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  const int64_t hidden = config_.hidden_size;
  if (!is_clip_activation(config_.hidden_act)) {
    throw Error(ErrorCode::kUnsupported,
                "CLIP vision activation '" + config_.hidden_act + "' is not supported");
  }
  const Weights vision = weights_.sub("vision_model");
  nn::require_shape(vision, "embeddings.patch_embedding.weight",
                    {hidden, 3, config_.patch_size, config_.patch_size});
  const int64_t grid = config_.image_size / config_.patch_size;
  nn::require_shape(vision, "embeddings.position_embedding.weight", {grid * grid + 1, hidden});
  const std::string last = "encoder.layers." + std::to_string(config_.num_hidden_layers - 1);
  nn::require_shape(vision, last + ".mlp.fc1.weight", {config_.intermediate_size, hidden});
  nn::require_shape(vision, last + ".self_attn.q_proj.weight", {hidden, hidden});
  nn::require_shape(weights_, "visual_projection.weight", {config_.projection_dim, hidden});
}

at::Tensor ClipVisionModel::embeddings(const at::Tensor& pixel_values) const {
  const Weights w = weights_.sub("vision_model.embeddings");
  const at::Tensor patches =
      at::conv2d(pixel_values, w.get("patch_embedding.weight"), {}, config_.patch_size)
          .flatten(2)
          .transpose(1, 2);
  const at::Tensor cls =
      w.get("class_embedding").view({1, 1, -1}).expand({pixel_values.size(0), 1, -1});
  return at::cat({cls, patches}, 1) + w.get("position_embedding.weight");
}

ClipVisionOutput ClipVisionModel::forward(const at::Tensor& pixel_values) const {
  const int64_t size = config_.image_size;
  if (pixel_values.dim() != 4 || pixel_values.size(1) != 3 || pixel_values.size(2) != size ||
      pixel_values.size(3) != size) {
    throw Error(ErrorCode::kInvalidArgument, "CLIP vision pixels must be [batch, 3, " +
                                                 std::to_string(size) + ", " +
                                                 std::to_string(size) + "]");
  }
  at::NoGradGuard no_grad;
  const Weights vision = weights_.sub("vision_model");
  const at::Tensor& reference = vision.get("embeddings.class_embedding");
  const ClipLayerOptions options{config_.num_attention_heads, config_.layer_norm_eps,
                                 config_.hidden_act, /*causal=*/false};
  at::Tensor x = embeddings(pixel_values.to(reference.device(), reference.scalar_type()));
  x = nn::layer_norm(vision.sub("pre_layrnorm"), x, config_.layer_norm_eps);
  ClipVisionOutput out;
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    x = clip_encoder_layer(vision.sub("encoder.layers." + std::to_string(i)), x, options);
    if (i == config_.num_hidden_layers - 2) out.penultimate_hidden_states = x;
  }
  out.last_hidden_state = x;
  const at::Tensor pooled = nn::layer_norm(vision.sub("post_layernorm"),
                                           x.select(1, 0), config_.layer_norm_eps);
  out.image_embeds = nn::linear(weights_.sub("visual_projection"), pooled);
  return out;
}

ClipVisionOutput ClipVisionModel::encode_image(const at::Tensor& images, bool center_crop) const {
  const ClipVisionOutput out = forward(clip_preprocess(images, config_.image_size, center_crop));
  auto to_cpu = [](const at::Tensor& t) { return t.to(at::kCPU, at::kFloat); };
  return {to_cpu(out.last_hidden_state), to_cpu(out.penultimate_hidden_states),
          to_cpu(out.image_embeds)};
}

std::string checkpoint_clip_vision_file(const std::string& checkpoint_path) {
  const std::filesystem::path path(checkpoint_path);
  if (!std::filesystem::is_directory(path)) return checkpoint_path;
  const std::filesystem::path encoder = path / "image_encoder" / "model.safetensors";
  if (!std::filesystem::is_regular_file(encoder)) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + checkpoint_path + "' holds no CLIP vision model (no image_encoder/"
                "model.safetensors); unCLIPCheckpointLoader needs an unCLIP checkpoint",
                {{"path", checkpoint_path}});
  }
  return encoder.string();
}

std::shared_ptr<const ClipVisionModel> load_clip_vision(const std::string& path,
                                                        const std::string& device,
                                                        const std::string& dtype) {
  check_weights_path(path, "a CLIP vision model (.safetensors, .bin, .pt, .pth)");
  const TensorFile file = TensorFile::open(path);
  Weights weights(read_clip_vision_weights(file, at::kFloat));
  const ClipVisionConfig config = detect_clip_vision_config(weights);
  const RuntimePlacement placement = resolve_placement(device, dtype, Family::kSD1);
  weights.to(placement.dtype, placement.device);
  return std::make_shared<const ClipVisionModel>(config, std::move(weights));
}

}  // namespace df::engine
