// LoRA names of UNet and text-encoder weights, after ComfyUI's model_lora_keys_unet/_clip.
#include "engine/adapters/lora_names.h"

#include <algorithm>
#include <map>

#include "engine/key_index.h"

namespace df::engine {
namespace {

constexpr const char* kWeightSuffix = ".weight";

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::optional<std::string> without_weight_suffix(const std::string& key) {
  if (!key.ends_with(kWeightSuffix)) return std::nullopt;
  return key.substr(0, key.size() - std::string(kWeightSuffix).size());
}

// diffusers ResnetBlock2D names -> LDM ResBlock names, from parts[from].
std::optional<std::string> ldm_resnet_part(const std::vector<std::string>& parts, size_t from) {
  static const std::map<std::string, std::string> renames = {{"norm1", "in_layers.0"},
                                                             {"conv1", "in_layers.2"},
                                                             {"time_emb_proj", "emb_layers.1"},
                                                             {"norm2", "out_layers.0"},
                                                             {"conv2", "out_layers.3"},
                                                             {"conv_shortcut", "skip_connection"}};
  if (parts.size() <= from + 1) return std::nullopt;
  auto it = renames.find(parts[from]);
  if (it == renames.end()) return std::nullopt;
  return it->second + "." + join_from(parts, from + 1);
}

// "<kind>.<block index>.<rest>" for an LDM block list.
std::string ldm_block(const char* kind, int index, const std::string& rest) {
  return std::string(kind) + "." + std::to_string(index) + "." + rest;
}

// down_blocks.B.{resnets,attentions}.S.* and down_blocks.B.downsamplers.0.conv.*
std::optional<std::string> ldm_down_block_key(const std::vector<std::string>& parts, int block,
                                              int layers_per_block) {
  const int per_level = layers_per_block + 1;
  if (parts[2] == "downsamplers" && parts.size() > 5 && parts[3] == "0" && parts[4] == "conv") {
    return ldm_block("input_blocks", (block + 1) * per_level, "0.op." + join_from(parts, 5));
  }
  const auto slot = parse_index(parts[3]);
  if (!slot || *slot >= layers_per_block) return std::nullopt;
  const int index = 1 + block * per_level + *slot;
  if (parts[2] == "attentions") return ldm_block("input_blocks", index, "1." + join_from(parts, 4));
  if (parts[2] != "resnets") return std::nullopt;
  const auto resnet = ldm_resnet_part(parts, 4);
  return resnet ? std::optional(ldm_block("input_blocks", index, "0." + *resnet)) : std::nullopt;
}

// up_blocks.B.{resnets,attentions}.S.* and up_blocks.B.upsamplers.0.conv.* (the upsampler follows
// the attention in blocks that have one).
std::optional<std::string> ldm_up_block_key(const std::vector<std::string>& parts, int block,
                                            const UNetConfig& config) {
  const int per_level = config.layers_per_block + 1;
  if (parts[2] == "upsamplers" && parts.size() > 5 && parts[3] == "0" && parts[4] == "conv") {
    if (block >= static_cast<int>(config.up_block_types.size())) return std::nullopt;
    const bool attention = config.up_block_types[block] == "CrossAttnUpBlock2D";
    return ldm_block("output_blocks", block * per_level + config.layers_per_block,
                     (attention ? "2.conv." : "1.conv.") + join_from(parts, 5));
  }
  const auto slot = parse_index(parts[3]);
  if (!slot || *slot >= per_level) return std::nullopt;
  const int index = block * per_level + *slot;
  if (parts[2] == "attentions") return ldm_block("output_blocks", index, "1." + join_from(parts, 4));
  if (parts[2] != "resnets") return std::nullopt;
  const auto resnet = ldm_resnet_part(parts, 4);
  return resnet ? std::optional(ldm_block("output_blocks", index, "0." + *resnet)) : std::nullopt;
}

std::optional<std::string> ldm_mid_block_key(const std::vector<std::string>& parts) {
  if (parts.size() < 4) return std::nullopt;
  if (parts[1] == "attentions" && parts[2] == "0") return "middle_block.1." + join_from(parts, 3);
  const auto slot = parse_index(parts[2]);
  if (parts[1] != "resnets" || !slot || *slot > 1) return std::nullopt;
  const auto resnet = ldm_resnet_part(parts, 3);
  return resnet ? std::optional(ldm_block("middle_block", 2 * *slot, *resnet)) : std::nullopt;
}

// The ComfyUI name of a text encoder ("clip_l", ...), as its generic LoRA names spell it.
std::string comfy_clip_name(TextEncoderKind kind) {
  switch (kind) {
    case TextEncoderKind::kClipL:
      return "clip_l";
    case TextEncoderKind::kClipH:
      return "clip_h";
    default:
      return "clip_g";
  }
}

// kohya's and diffusers' prefixes for the attention and MLP projections of an encoder.
struct TextLoraPrefixes {
  std::vector<std::string> kohya;      // followed by the transformers name with underscores
  std::vector<std::string> diffusers;  // followed by the transformers name
};

TextLoraPrefixes text_lora_prefixes(TextEncoderKind kind) {
  switch (kind) {
    case TextEncoderKind::kClipL:
    case TextEncoderKind::kClipH:
      return {{"lora_te_", "lora_te1_"}, {"text_encoder."}};
    case TextEncoderKind::kClipG:
      return {{"lora_te2_"}, {"text_encoder_2."}};
    case TextEncoderKind::kClipGAlone:
      return {{"lora_te_", "lora_prior_te_"}, {"text_encoder."}};
  }
  return {};
}

// ComfyUI maps kohya and diffusers names only for these projections of each layer.
bool is_layer_projection(const std::string& module) {
  static const std::vector<std::string> projections = {
      "mlp.fc1", "mlp.fc2", "self_attn.k_proj", "self_attn.q_proj", "self_attn.v_proj",
      "self_attn.out_proj"};
  const auto parts = split_dots(module);
  if (parts.size() < 4 || parts[0] != "encoder" || parts[1] != "layers" || !parse_index(parts[2])) {
    return false;
  }
  return std::find(projections.begin(), projections.end(), join_from(parts, 3)) !=
         projections.end();
}

std::vector<std::string> text_projection_names(TextEncoderKind kind) {
  switch (kind) {
    case TextEncoderKind::kClipL:
      return {"lora_te1_text_projection"};
    case TextEncoderKind::kClipG:
    case TextEncoderKind::kClipGAlone:
      return {"lora_prior_te_text_projection", "lora_te2_text_projection"};
    default:
      return {};
  }
}

}  // namespace

std::vector<TextEncoderKind> text_encoder_kinds(Family family) {
  switch (family) {
    case Family::kSD1:
      return {TextEncoderKind::kClipL};
    case Family::kSD2:
      return {TextEncoderKind::kClipH};
    case Family::kSDXL:
      return {TextEncoderKind::kClipL, TextEncoderKind::kClipG};
    case Family::kSDXLRefiner:
      return {TextEncoderKind::kClipGAlone};
    default:  // the DiT families' text encoders take no LoRA here
      break;
  }
  return {};
}

std::optional<std::string> diffusers_unet_key_to_ldm(const std::string& key,
                                                     const UNetConfig& config) {
  static const std::map<std::string, std::string> fixed = {
      {"conv_in", "input_blocks.0.0"},
      {"time_embedding.linear_1", "time_embed.0"},
      {"time_embedding.linear_2", "time_embed.2"},
      {"add_embedding.linear_1", "label_emb.0.0"},
      {"add_embedding.linear_2", "label_emb.0.2"},
      {"conv_norm_out", "out.0"},
      {"conv_out", "out.2"}};
  const size_t last_dot = key.rfind('.');
  if (last_dot == std::string::npos) return std::nullopt;
  if (auto it = fixed.find(key.substr(0, last_dot)); it != fixed.end()) {
    return it->second + key.substr(last_dot);
  }
  const auto parts = split_dots(key);
  if (parts[0] == "mid_block") return ldm_mid_block_key(parts);
  if (parts.size() < 5) return std::nullopt;
  const auto block = parse_index(parts[1]);
  if (!block) return std::nullopt;
  if (parts[0] == "down_blocks") return ldm_down_block_key(parts, *block, config.layers_per_block);
  if (parts[0] == "up_blocks") return ldm_up_block_key(parts, *block, config);
  return std::nullopt;
}

std::string kohya_lora_name(const std::string& prefix, const std::string& module) {
  std::string name = prefix + module;
  std::replace(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(), '.', '_');
  return name;
}

std::vector<std::string> unet_lora_names(const std::string& key, const UNetConfig& config) {
  const auto ldm = diffusers_unet_key_to_ldm(key, config);
  const auto module = without_weight_suffix(key);
  if (!module) {
    if (!ldm) return {};
    return {"diffusion_model." + *ldm};
  }
  std::vector<std::string> names = {kohya_lora_name("lora_unet_", *module),
                                    kohya_lora_name("lycoris_", *module), "unet." + *module};
  std::string processor = replace_all(*module, ".to_", ".processor.to_");
  if (processor.ends_with(".to_out.0")) processor.resize(processor.size() - 2);
  names.push_back(processor);
  names.push_back("unet." + processor);
  if (ldm) {
    const std::string ldm_module = *without_weight_suffix(*ldm);
    names.push_back(kohya_lora_name("lora_unet_", ldm_module));
    names.push_back(kohya_lora_name("lora_prior_unet_", ldm_module));
    names.push_back("diffusion_model." + ldm_module);
  }
  return names;
}

std::string transformers_text_module(const std::string& module) {
  return module.starts_with("text_projection") ? module : "text_model." + module;
}

std::vector<std::string> text_encoder_lora_names(const std::string& key, TextEncoderKind kind) {
  const std::string nested = "text_model.";
  const auto module = without_weight_suffix(key.starts_with(nested) ? key.substr(nested.size()) : key);
  if (!module) return {};
  const std::string full = transformers_text_module(*module);
  std::vector<std::string> names = {"text_encoders." + comfy_clip_name(kind) + ".transformer." +
                                    full};
  if (*module == "text_projection") {
    for (const auto& name : text_projection_names(kind)) names.push_back(name);
  }
  if (is_layer_projection(*module)) {
    const TextLoraPrefixes prefixes = text_lora_prefixes(kind);
    for (const auto& prefix : prefixes.kohya) names.push_back(kohya_lora_name(prefix, full));
    for (const auto& prefix : prefixes.diffusers) names.push_back(prefix + full);
  }
  return names;
}

}  // namespace df::engine
