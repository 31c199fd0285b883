// Single-file checkpoints: family detection, config inference and LDM -> diffusers names.
#include "engine/ldm_keys.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "engine/key_index.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

constexpr const char* kUNetPrefix = "model.diffusion_model.";

// LDM ResBlock names -> diffusers ResnetBlock2D names (UNet).
std::optional<std::string> unet_resnet_key(const std::vector<std::string>& parts, size_t from) {
  static const std::map<std::string, std::string> renames = {{"in_layers.0", "norm1"},
                                                             {"in_layers.2", "conv1"},
                                                             {"emb_layers.1", "time_emb_proj"},
                                                             {"out_layers.0", "norm2"},
                                                             {"out_layers.3", "conv2"}};
  if (parts.size() > from + 1 && parts[from] == "skip_connection") {
    return "conv_shortcut." + join_from(parts, from + 1);
  }
  if (parts.size() < from + 3) return std::nullopt;
  auto it = renames.find(parts[from] + "." + parts[from + 1]);
  if (it == renames.end()) return std::nullopt;
  return it->second + "." + join_from(parts, from + 2);
}

// LDM VAE ResnetBlock names -> diffusers (only the shortcut is renamed).
std::optional<std::string> vae_resnet_key(const std::vector<std::string>& parts, size_t from) {
  if (parts.size() < from + 2) return std::nullopt;
  static const std::set<std::string> kept = {"norm1", "conv1", "norm2", "conv2"};
  if (parts[from] == "nin_shortcut") return "conv_shortcut." + join_from(parts, from + 1);
  if (kept.count(parts[from])) return join_from(parts, from);
  return std::nullopt;
}

// LDM VAE AttnBlock names -> diffusers Attention names.
std::optional<std::string> vae_attention_key(const std::vector<std::string>& parts, size_t from) {
  static const std::map<std::string, std::string> renames = {{"norm", "group_norm"},
                                                             {"q", "to_q"},
                                                             {"k", "to_k"},
                                                             {"v", "to_v"},
                                                             {"proj_out", "to_out.0"}};
  if (parts.size() != from + 2) return std::nullopt;
  auto it = renames.find(parts[from]);
  if (it == renames.end()) return std::nullopt;
  return it->second + "." + parts[from + 1];
}

// "found 1500 tensors such as 'lora_unet_down...' (700), ..." for error messages.
std::string describe_key_groups(const KeyIndex& keys) {
  std::map<std::string, int> groups;
  for (const auto& name : keys.names()) {
    const auto parts = split_dots(name);
    groups[parts.size() > 1 ? parts[0] + "." + parts[1] : parts[0]]++;
  }
  std::vector<std::pair<std::string, int>> sorted(groups.begin(), groups.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text = std::to_string(keys.names().size()) + " tensors";
  for (size_t i = 0; i < sorted.size() && i < 5; ++i) {
    text +=
        (i ? ", '" : " under '") + sorted[i].first + "' (" + std::to_string(sorted[i].second) + ")";
  }
  return text;
}

// How a text encoder is stored in a single file.
enum class ClipNaming { kTransformers, kOpenClip };

struct TextEncoderSource {
  std::string prefix;
  ClipNaming naming;
};

std::vector<TextEncoderSource> text_encoder_sources(Family family) {
  switch (family) {
    case Family::kSD1:
      return {{"cond_stage_model.transformer.", ClipNaming::kTransformers}};
    case Family::kSD2:
      return {{"cond_stage_model.model.", ClipNaming::kOpenClip}};
    case Family::kSDXL:
      return {{"conditioner.embedders.0.transformer.", ClipNaming::kTransformers},
              {"conditioner.embedders.1.model.", ClipNaming::kOpenClip}};
    case Family::kSDXLRefiner:
      return {{"conditioner.embedders.0.model.", ClipNaming::kOpenClip}};
    default:  // the DiT families keep their text encoders in files of their own
      break;
  }
  return {};
}

std::string vae_prefix(const KeyIndex& keys) {
  for (const char* prefix : {"first_stage_model.", "vae."}) {
    if (keys.has_prefix(std::string(prefix) + "encoder.")) return prefix;
  }
  throw Error(ErrorCode::kUnsupported, "'" + keys.file().path() +
                                           "' has no VAE weights (first_stage_model.*); found " +
                                           describe_key_groups(keys));
}

int heads_of_width_64(int channels, const std::string& what) {
  if (channels <= 0 || channels % 64 != 0) {
    throw Error(ErrorCode::kUnsupported,
                "cannot infer the attention heads of " + what + ": " + std::to_string(channels) +
                    " channels are not a multiple of 64 (store the diffusers config in the "
                    "file's metadata)");
  }
  return channels / 64;
}

UNetConfig infer_unet_config(const KeyIndex& keys, Family family,
                             const std::string& p = kUNetPrefix) {
  UNetConfig c;
  const auto& conv_in = keys.shape(p + "input_blocks.0.0.weight", 4);
  c.in_channels = static_cast<int>(conv_in[1]);
  c.out_channels = static_cast<int>(keys.shape(p + "out.2.weight", 4)[0]);
  const int input_blocks = keys.count_indexed(p + "input_blocks.");
  int levels = 1;
  int first_downsample = 0;
  for (int i = 1; i < input_blocks; ++i) {
    if (keys.has(p + "input_blocks." + std::to_string(i) + ".0.op.weight")) {
      if (first_downsample == 0) first_downsample = i;
      ++levels;
    }
  }
  c.layers_per_block = first_downsample ? first_downsample - 1 : input_blocks - 1;
  const int expected_blocks = 1 + levels * c.layers_per_block + (levels - 1);
  if (c.layers_per_block < 1 || input_blocks != expected_blocks ||
      keys.count_indexed(p + "output_blocks.") != levels * (c.layers_per_block + 1)) {
    throw Error(ErrorCode::kUnsupported, "'" + keys.file().path() +
                                             "' has a UNet block layout this engine does not "
                                             "know (" +
                                             std::to_string(input_blocks) + " input blocks)");
  }
  auto block = [&](const char* kind, int index) {
    return p + kind + "." + std::to_string(index) + ".";
  };
  for (int level = 0; level < levels; ++level) {
    const std::string first = block("input_blocks", 1 + level * (c.layers_per_block + 1));
    c.block_out_channels.push_back(
        static_cast<int>(keys.shape(first + "0.out_layers.3.weight", 4)[0]));
    const bool attention = keys.has(first + "1.proj_in.weight");
    c.down_block_types.push_back(attention ? "CrossAttnDownBlock2D" : "DownBlock2D");
    const int depth = keys.count_indexed(first + "1.transformer_blocks.");
    c.transformer_layers_per_block.push_back(attention ? depth : 1);
    const int channels = c.block_out_channels.back();
    c.num_attention_heads.push_back(
        family == Family::kSD1 ? 8 : heads_of_width_64(channels, "the UNet"));
  }
  for (int i = 0; i < levels; ++i) {
    const bool attention =
        keys.has(block("output_blocks", i * (c.layers_per_block + 1)) + "1.proj_in.weight");
    c.up_block_types.push_back(attention ? "CrossAttnUpBlock2D" : "UpBlock2D");
  }
  const std::string mid = p + "middle_block.1.";
  c.cross_attention_dim =
      static_cast<int>(keys.shape(mid + "transformer_blocks.0.attn2.to_k.weight", 2)[1]);
  c.use_linear_projection = keys.shape(mid + "proj_in.weight").size() == 2;
  if (keys.has(p + "label_emb.0.0.weight")) {
    // SDXL's label_emb embeds pooled text and sizes; SD 2.x's (unCLIP) embeds CLIP image embeddings.
    if (family == Family::kSDXL || family == Family::kSDXLRefiner) {
      c.addition_embed_type = "text_time";
    } else {
      c.class_embed_type = "projection";
    }
    c.projection_class_embeddings_input_dim =
        static_cast<int>(keys.shape(p + "label_emb.0.0.weight", 2)[1]);
  }
  c.sample_size = family == Family::kSD1 || family == Family::kSD2 ? 64 : 128;
  return c;
}

VaeConfig infer_vae_config(const KeyIndex& keys, const std::string& prefix, Family family) {
  VaeConfig c;
  const int blocks = keys.count_indexed(prefix + "encoder.down.");
  if (blocks == 0) throw Error(ErrorCode::kUnsupported, "the VAE has no encoder blocks");
  c.layers_per_block = keys.count_indexed(prefix + "encoder.down.0.block.");
  for (int i = 0; i < blocks; ++i) {
    c.block_out_channels.push_back(static_cast<int>(
        keys.shape(prefix + "encoder.down." + std::to_string(i) + ".block.0.conv2.weight", 4)[0]));
  }
  c.in_channels = static_cast<int>(keys.shape(prefix + "encoder.conv_in.weight", 4)[1]);
  c.out_channels = static_cast<int>(keys.shape(prefix + "decoder.conv_out.weight", 4)[0]);
  c.latent_channels = static_cast<int>(keys.shape(prefix + "decoder.conv_in.weight", 4)[1]);
  c.use_quant_conv = keys.has(prefix + "quant_conv.weight");
  const bool xl = family == Family::kSDXL || family == Family::kSDXLRefiner;
  c.scaling_factor = xl ? 0.13025 : 0.18215;
  c.sample_size = xl ? 1024 : 512;
  return c;
}

ClipTextConfig infer_transformers_clip_config(const KeyIndex& keys, const std::string& prefix) {
  const bool nested = keys.has(prefix + "text_model.embeddings.token_embedding.weight");
  const std::string base = nested ? prefix + "text_model." : prefix;
  ClipTextConfig c;
  const auto& tokens = keys.shape(base + "embeddings.token_embedding.weight", 2);
  c.vocab_size = static_cast<int>(tokens[0]);
  c.hidden_size = static_cast<int>(tokens[1]);
  c.max_position_embeddings =
      static_cast<int>(keys.shape(base + "embeddings.position_embedding.weight", 2)[0]);
  c.num_hidden_layers = keys.count_indexed(base + "encoder.layers.");
  c.intermediate_size =
      static_cast<int>(keys.shape(base + "encoder.layers.0.mlp.fc1.weight", 2)[0]);
  c.num_attention_heads = heads_of_width_64(c.hidden_size, "the CLIP text encoder");
  c.hidden_act = "quick_gelu";
  c.projection_dim = c.hidden_size;
  c.with_projection = false;
  return c;
}

ClipTextConfig infer_open_clip_config(const KeyIndex& keys, const std::string& prefix,
                                      Family family) {
  ClipTextConfig c;
  const auto& tokens = keys.shape(prefix + "token_embedding.weight", 2);
  c.vocab_size = static_cast<int>(tokens[0]);
  c.hidden_size = static_cast<int>(tokens[1]);
  c.max_position_embeddings = static_cast<int>(keys.shape(prefix + "positional_embedding", 2)[0]);
  const int stored_layers = keys.count_indexed(prefix + "transformer.resblocks.");
  // diffusers builds SD2's encoder without the last layer, whose output SD2 never used.
  c.num_hidden_layers = family == Family::kSD2 ? stored_layers - 1 : stored_layers;
  if (c.num_hidden_layers < 1) {
    throw Error(ErrorCode::kUnsupported, "the OpenCLIP text encoder has too few layers");
  }
  c.intermediate_size =
      static_cast<int>(keys.shape(prefix + "transformer.resblocks.0.mlp.c_fc.weight", 2)[0]);
  c.num_attention_heads = heads_of_width_64(c.hidden_size, "the OpenCLIP text encoder");
  c.hidden_act = "gelu";
  c.with_projection = family != Family::kSD2;
  c.projection_dim = c.with_projection
                         ? static_cast<int>(keys.shape(prefix + "text_projection", 2)[1])
                         : c.hidden_size;
  return c;
}

// Population standard deviation of a stored tensor's values, read as float32.
double stored_std(const TensorFile& file, const std::string& name) {
  TensorMap one = load_tensors_as(file, at::kFloat, [&](const std::string& key) {
    return key == name ? std::optional<std::string>(key) : std::nullopt;
  });
  return one.at(name).std(/*unbiased=*/false).item<double>();
}

// Without markers only SD2 can be a v-prediction model; see spec 3.4.
Prediction infer_prediction(const KeyIndex& keys, Family family, const UNetConfig& unet) {
  const std::string prefix = kUNetPrefix;
  const int last =
      static_cast<int>(unet.block_out_channels.size()) * (unet.layers_per_block + 1) - 1;
  return prediction_from_norm_bias(keys.file(), family,
                                   prefix + "output_blocks." + std::to_string(last) +
                                       ".1.transformer_blocks.0.norm1.bias");
}

// The SDXL conditioning vector is pooled text (projection_dim) + 256-wide embeddings of 6 time
// ids (base) or 5 (refiner: size, crop and aesthetic score).
void infer_addition_time_embed_dim(UNetConfig& unet, const PipelineConfig& config) {
  if (unet.addition_embed_type.empty() || config.text_encoders.empty()) return;
  const int time_ids = config.family == Family::kSDXLRefiner ? 5 : 6;
  const int pooled = config.text_encoders.back().projection_dim;
  const int rest = unet.projection_class_embeddings_input_dim - pooled;
  if (rest <= 0 || rest % time_ids != 0) {
    throw Error(ErrorCode::kUnsupported,
                "cannot split the UNet's conditioning width " +
                    std::to_string(unet.projection_class_embeddings_input_dim) +
                    " into pooled text and " + std::to_string(time_ids) + " time ids");
  }
  unet.addition_time_embed_dim = rest / time_ids;
}

// Maps stored names to "<component>.<diffusers name>".
class SingleFileKeyMap {
 public:
  SingleFileKeyMap(const KeyIndex& keys, const PipelineConfig& config)
      : config_(config),
        vae_prefix_(vae_prefix(keys)),
        sources_(text_encoder_sources(config.family)) {}

  std::optional<std::string> operator()(const std::string& key) const {
    if (key.starts_with(kUNetPrefix)) {
      const std::string rest = key.substr(std::string(kUNetPrefix).size());
      return component("unet", key, unet_name(rest));
    }
    if (key.starts_with(vae_prefix_)) {
      const std::string rest = key.substr(vae_prefix_.size());
      const int blocks = static_cast<int>(config_.vae.block_out_channels.size());
      return component("vae", key, ldm_vae_key_to_diffusers(rest, blocks));
    }
    for (size_t i = 0; i < sources_.size(); ++i) {
      if (!key.starts_with(sources_[i].prefix)) continue;
      const std::string rest = key.substr(sources_[i].prefix.size());
      if (rest.ends_with("position_ids") || rest == "logit_scale" || rest == "attn_mask") {
        return std::nullopt;  // buffers and training leftovers, not weights
      }
      const auto name = sources_[i].naming == ClipNaming::kTransformers
                            ? std::optional<std::string>(hf_clip_key(rest))
                            : open_clip_key_to_hf(rest);
      if (name && !belongs_to_encoder(*name, config_.text_encoders.at(i))) return std::nullopt;
      return component(i == 0 ? "text_encoder" : "text_encoder_2", key, name);
    }
    return std::nullopt;  // EMA weights, schedule buffers, markers such as v_pred
  }

 private:
  // The diffusers name of a UNet tensor; an unCLIP UNet's label_emb is its class embedding.
  std::optional<std::string> unet_name(const std::string& rest) const {
    auto name = ldm_unet_key_to_diffusers(rest, config_.unet.layers_per_block);
    const std::string added = "add_embedding.";
    if (name && config_.unet.class_embed_type == "projection" && name->starts_with(added)) {
      name = "class_embedding." + name->substr(added.size());
    }
    return name;
  }

  // SD2 files keep a last OpenCLIP layer and a projection its diffusers encoder does not have.
  static bool belongs_to_encoder(const std::string& name, const ClipTextConfig& config) {
    if (name == "text_projection.weight") return config.with_projection;
    const std::string layers = "text_model.encoder.layers.";
    if (!name.starts_with(layers)) return true;
    const auto index = parse_index(split_dots(name.substr(layers.size()))[0]);
    return index && *index < config.num_hidden_layers;
  }

  static std::optional<std::string> component(const std::string& component, const std::string& key,
                                              const std::optional<std::string>& name) {
    if (!name) {
      throw Error(ErrorCode::kUnsupported, "tensor '" + key + "' has no counterpart in a " +
                                               component + " this engine knows");
    }
    return component + "." + *name;
  }

  const PipelineConfig& config_;
  std::string vae_prefix_;
  std::vector<TextEncoderSource> sources_;
};

// Splits "<component>.<name>" tensors into one map per component.
SingleFileWeights split_components(TensorMap&& all) {
  SingleFileWeights out;
  std::map<std::string, TensorMap> by_component;
  for (auto& [key, tensor] : all) {
    const size_t dot = key.find('.');
    by_component[key.substr(0, dot)].emplace(key.substr(dot + 1), std::move(tensor));
  }
  out.unet = std::move(by_component["unet"]);
  out.vae = std::move(by_component["vae"]);
  out.text_encoders.push_back(std::move(by_component["text_encoder"]));
  if (by_component.count("text_encoder_2")) {
    out.text_encoders.push_back(std::move(by_component["text_encoder_2"]));
  }
  return out;
}

}  // namespace

Family detect_single_file_family(const TensorFile& file) {
  const KeyIndex keys(file);
  if (!keys.has(std::string(kUNetPrefix) + "input_blocks.0.0.weight")) {
    throw Error(ErrorCode::kUnsupported,
                "'" + file.path() +
                    "' is not a Stable Diffusion checkpoint this engine knows (no "
                    "model.diffusion_model.* UNet); it has " +
                    describe_key_groups(keys),
                {{"path", file.path()}});
  }
  if (keys.has_prefix("conditioner.embedders.1.model.")) return Family::kSDXL;
  if (keys.has_prefix("conditioner.embedders.0.model.")) return Family::kSDXLRefiner;
  if (keys.has_prefix("cond_stage_model.model.")) return Family::kSD2;
  if (keys.has_prefix("cond_stage_model.transformer.")) return Family::kSD1;
  throw Error(ErrorCode::kUnsupported,
              "'" + file.path() +
                  "' has a UNet but no text encoder this engine knows (cond_stage_model.* or "
                  "conditioner.embedders.*); it has " +
                  describe_key_groups(keys),
              {{"path", file.path()}});
}

PipelineConfig infer_single_file_config(const TensorFile& file) {
  const KeyIndex keys(file);
  PipelineConfig config;
  config.family = detect_single_file_family(file);
  config.requires_aesthetics_score = config.family == Family::kSDXLRefiner;

  const auto unet_json = metadata_config(file, kUNetConfigMetadata);
  config.unet =
      unet_json ? UNetConfig::from_json(*unet_json) : infer_unet_config(keys, config.family);
  const auto vae_json = metadata_config(file, kVaeConfigMetadata);
  config.vae = vae_json ? VaeConfig::from_json(*vae_json)
                        : infer_vae_config(keys, vae_prefix(keys), config.family);

  const auto sources = text_encoder_sources(config.family);
  for (size_t i = 0; i < sources.size(); ++i) {
    const auto text_json =
        metadata_config(file, i == 0 ? kTextEncoderConfigMetadata : kTextEncoder2ConfigMetadata);
    ClipTextConfig text;
    if (text_json) {
      text = ClipTextConfig::from_json(*text_json);
    } else if (sources[i].naming == ClipNaming::kTransformers) {
      text = infer_transformers_clip_config(keys, sources[i].prefix);
    } else {
      text = infer_open_clip_config(keys, sources[i].prefix, config.family);
    }
    text.with_projection =
        sources[i].naming == ClipNaming::kOpenClip && config.family != Family::kSD2;
    config.text_encoders.push_back(text);
  }
  if (!unet_json) infer_addition_time_embed_dim(config.unet, config);

  const auto schedule_json = metadata_config(file, kSchedulerConfigMetadata);
  if (schedule_json) config.schedule = NoiseScheduleConfig::from_json(*schedule_json);
  if (keys.has("v_pred") || (!schedule_json && config.unet.class_embed_type == "projection")) {
    config.schedule.prediction = Prediction::kVPrediction;  // SD2.1 unCLIP predicts v
  } else if (!schedule_json) {
    config.schedule.prediction = infer_prediction(keys, config.family, config.unet);
  }
  return config;
}

SingleFileWeights load_single_file_weights(const TensorFile& file,
                                           const PipelineConfig& config, at::ScalarType dtype) {
  const KeyIndex keys(file);
  const SingleFileKeyMap key_map(keys, config);
  SingleFileWeights weights = split_components(load_tensors_as(file, dtype, key_map));
  squeeze_vae_attention_weights(weights.vae);
  const auto sources = text_encoder_sources(config.family);
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].naming == ClipNaming::kOpenClip)
      split_open_clip_tensors(weights.text_encoders[i]);
  }
  return weights;
}

std::optional<std::string> ldm_unet_key_to_diffusers(const std::string& key, int layers_per_block) {
  static const std::map<std::string, std::string> fixed = {
      {"time_embed.0", "time_embedding.linear_1"},
      {"time_embed.2", "time_embedding.linear_2"},
      {"label_emb.0.0", "add_embedding.linear_1"},
      {"label_emb.0.2", "add_embedding.linear_2"},
      {"input_blocks.0.0", "conv_in"},
      {"out.0", "conv_norm_out"},
      {"out.2", "conv_out"}};
  const size_t last_dot = key.rfind('.');
  if (last_dot == std::string::npos) return std::nullopt;
  if (auto it = fixed.find(key.substr(0, last_dot)); it != fixed.end()) {
    return it->second + key.substr(last_dot);
  }
  const auto parts = split_dots(key);
  if (parts.size() < 4) return std::nullopt;
  const auto index = parse_index(parts[1]);
  if (!index) return std::nullopt;
  const int per_level = layers_per_block + 1;
  const std::string& layer = parts[2];
  if (parts[0] == "input_blocks" && *index >= 1) {
    const std::string block = "down_blocks." + std::to_string((*index - 1) / per_level);
    const std::string slot = std::to_string((*index - 1) % per_level);
    if (layer == "0" && parts[3] == "op")
      return block + ".downsamplers.0.conv." + join_from(parts, 4);
    if (layer == "0") {
      auto resnet = unet_resnet_key(parts, 3);
      return resnet ? std::optional(block + ".resnets." + slot + "." + *resnet) : std::nullopt;
    }
    if (layer == "1") return block + ".attentions." + slot + "." + join_from(parts, 3);
    return std::nullopt;
  }
  if (parts[0] == "middle_block") {
    if (*index == 1) return "mid_block.attentions.0." + join_from(parts, 2);
    if (*index != 0 && *index != 2) return std::nullopt;
    auto resnet = unet_resnet_key(parts, 2);
    return resnet ? std::optional("mid_block.resnets." + std::to_string(*index / 2) + "." + *resnet)
                  : std::nullopt;
  }
  if (parts[0] == "output_blocks") {
    const std::string block = "up_blocks." + std::to_string(*index / per_level);
    const std::string slot = std::to_string(*index % per_level);
    if (layer == "0") {
      auto resnet = unet_resnet_key(parts, 3);
      return resnet ? std::optional(block + ".resnets." + slot + "." + *resnet) : std::nullopt;
    }
    if ((layer == "1" || layer == "2") && parts[3] == "conv") {
      return block + ".upsamplers.0.conv." + join_from(parts, 4);
    }
    if (layer == "1") return block + ".attentions." + slot + "." + join_from(parts, 3);
  }
  return std::nullopt;
}

std::optional<std::string> ldm_vae_key_to_diffusers(const std::string& key, int num_blocks) {
  const auto parts = split_dots(key);
  if (parts.size() == 2 && (parts[0] == "quant_conv" || parts[0] == "post_quant_conv")) return key;
  if (parts.size() < 3 || (parts[0] != "encoder" && parts[0] != "decoder")) return std::nullopt;
  const std::string& side = parts[0];
  if (parts.size() == 3 && (parts[1] == "conv_in" || parts[1] == "conv_out")) return key;
  if (parts.size() == 3 && parts[1] == "norm_out") return side + ".conv_norm_out." + parts[2];
  if (parts[1] == "mid" && parts.size() >= 4) {
    const std::string mid = side + ".mid_block.";
    std::optional<std::string> rest;
    if (parts[2] == "block_1" || parts[2] == "block_2") {
      rest = vae_resnet_key(parts, 3);
      if (rest) rest = std::string("resnets.") + (parts[2] == "block_1" ? "0." : "1.") + *rest;
    } else if (parts[2] == "attn_1") {
      rest = vae_attention_key(parts, 3);
      if (rest) rest = "attentions.0." + *rest;
    }
    return rest ? std::optional(mid + *rest) : std::nullopt;
  }
  const bool encoder = side == "encoder" && parts[1] == "down";
  const bool decoder = side == "decoder" && parts[1] == "up";
  if ((!encoder && !decoder) || parts.size() < 6) return std::nullopt;
  const auto stored = parse_index(parts[2]);
  if (!stored || *stored >= num_blocks) return std::nullopt;
  const int index = encoder ? *stored : num_blocks - 1 - *stored;
  const std::string block =
      side + (encoder ? ".down_blocks." : ".up_blocks.") + std::to_string(index) + ".";
  if (parts[3] == "block") {
    const auto slot = parse_index(parts[4]);
    auto rest = vae_resnet_key(parts, 5);
    if (!slot || !rest) return std::nullopt;
    return block + "resnets." + parts[4] + "." + *rest;
  }
  const char* sampler = encoder ? "downsample" : "upsample";
  if (parts[3] == sampler && parts[4] == "conv" && parts.size() == 6) {
    return block + (encoder ? "downsamplers" : "upsamplers") + ".0.conv." + parts[5];
  }
  return std::nullopt;
}

std::string hf_clip_key(const std::string& key) {
  if (key.starts_with("text_model.") || key.starts_with("text_projection.")) return key;
  return "text_model." + key;
}

std::optional<std::string> open_clip_key_to_hf(const std::string& key) {
  static const std::map<std::string, std::string> fixed = {
      {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
      {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
      {"ln_final.weight", "text_model.final_layer_norm.weight"},
      {"ln_final.bias", "text_model.final_layer_norm.bias"},
      {"text_projection", "text_projection.weight"}};
  if (auto it = fixed.find(key); it != fixed.end()) return it->second;
  static const std::map<std::string, std::string> layer_parts = {
      {"ln_1.weight", "layer_norm1.weight"},
      {"ln_1.bias", "layer_norm1.bias"},
      {"ln_2.weight", "layer_norm2.weight"},
      {"ln_2.bias", "layer_norm2.bias"},
      {"attn.in_proj_weight", "self_attn.in_proj_weight"},
      {"attn.in_proj_bias", "self_attn.in_proj_bias"},
      {"attn.out_proj.weight", "self_attn.out_proj.weight"},
      {"attn.out_proj.bias", "self_attn.out_proj.bias"},
      {"mlp.c_fc.weight", "mlp.fc1.weight"},
      {"mlp.c_fc.bias", "mlp.fc1.bias"},
      {"mlp.c_proj.weight", "mlp.fc2.weight"},
      {"mlp.c_proj.bias", "mlp.fc2.bias"}};
  const std::string resblocks = "transformer.resblocks.";
  if (!key.starts_with(resblocks)) return std::nullopt;
  const size_t dot = key.find('.', resblocks.size());
  if (dot == std::string::npos) return std::nullopt;
  const auto index = parse_index(key.substr(resblocks.size(), dot - resblocks.size()));
  auto it = layer_parts.find(key.substr(dot + 1));
  if (!index || it == layer_parts.end()) return std::nullopt;
  return "text_model.encoder.layers." + std::to_string(*index) + "." + it->second;
}

void split_open_clip_tensors(TensorMap& tensors) {
  std::vector<std::string> fused;
  for (const auto& [name, tensor] : tensors) {
    if (name.ends_with(".self_attn.in_proj_weight") ||
        name.ends_with(".self_attn.in_proj_bias")) {
      fused.push_back(name);
    }
  }
  for (const auto& name : fused) {
    at::Tensor tensor = std::move(tensors.at(name));
    tensors.erase(name);
    if (tensor.dim() < 1 || tensor.size(0) % 3 != 0) {
      throw Error(ErrorCode::kCorruptFile,
                  "text encoder tensor '" + name + "' does not hold three equal q/k/v projections");
    }
    const std::string layer = name.substr(0, name.rfind('.') + 1);  // "...self_attn."
    const std::string kind = name.ends_with("weight") ? "weight" : "bias";
    const auto qkv = tensor.chunk(3, 0);
    tensors[layer + "q_proj." + kind] = qkv[0];
    tensors[layer + "k_proj." + kind] = qkv[1];
    tensors[layer + "v_proj." + kind] = qkv[2];
  }
  if (auto it = tensors.find("text_projection.weight"); it != tensors.end()) {
    if (it->second.dim() != 2) {
      throw Error(ErrorCode::kCorruptFile, "text encoder tensor 'text_projection' is not a matrix");
    }
    it->second = it->second.t().contiguous();
  }
}

void squeeze_vae_attention_weights(TensorMap& tensors) {
  for (const char* side : {"encoder", "decoder"}) {
    for (const char* projection : {"to_q", "to_k", "to_v", "to_out.0"}) {
      const std::string name =
          std::string(side) + ".mid_block.attentions.0." + projection + ".weight";
      auto it = tensors.find(name);
      if (it == tensors.end() || it->second.dim() != 4) continue;
      if (it->second.size(2) != 1 || it->second.size(3) != 1) {
        throw Error(ErrorCode::kCorruptFile,
                    "VAE attention weight '" + name + "' is not a 1x1 convolution");
      }
      it->second = it->second.flatten(1);
    }
  }
}

namespace {

// The prefix a standalone VAE's tensors are stored under ("" for bare names).
std::string standalone_vae_prefix(const KeyIndex& keys) {
  for (const char* prefix : {"", "first_stage_model.", "vae."}) {
    if (keys.has_prefix(std::string(prefix) + "encoder.") &&
        keys.has_prefix(std::string(prefix) + "decoder.")) {
      return prefix;
    }
  }
  throw Error(ErrorCode::kUnsupported, "'" + keys.file().path() +
                                           "' holds no VAE (encoder.* and decoder.* tensors); "
                                           "found " + describe_key_groups(keys));
}

VaeConfig infer_diffusers_vae_config(const KeyIndex& keys, const std::string& prefix) {
  VaeConfig c;
  const int blocks = keys.count_indexed(prefix + "encoder.down_blocks.");
  c.layers_per_block = keys.count_indexed(prefix + "encoder.down_blocks.0.resnets.");
  for (int i = 0; i < blocks; ++i) {
    c.block_out_channels.push_back(static_cast<int>(
        keys.shape(prefix + "encoder.down_blocks." + std::to_string(i) + ".resnets.0.conv2.weight",
                   4)[0]));
  }
  c.in_channels = static_cast<int>(keys.shape(prefix + "encoder.conv_in.weight", 4)[1]);
  c.out_channels = static_cast<int>(keys.shape(prefix + "decoder.conv_out.weight", 4)[0]);
  c.latent_channels = static_cast<int>(keys.shape(prefix + "decoder.conv_in.weight", 4)[1]);
  c.use_quant_conv = keys.has(prefix + "quant_conv.weight");
  return c;
}

}  // namespace

StandaloneVae load_standalone_vae(const TensorFile& file, at::ScalarType dtype) {
  const KeyIndex keys(file);
  const std::string prefix = standalone_vae_prefix(keys);
  const bool diffusers_names = keys.has_prefix(prefix + "encoder.down_blocks.");
  StandaloneVae vae;
  vae.config = diffusers_names ? infer_diffusers_vae_config(keys, prefix)
                               : infer_vae_config(keys, prefix, Family::kSD1);
  const int blocks = static_cast<int>(vae.config.block_out_channels.size());
  vae.weights = load_tensors_as(
      file, dtype, [&](const std::string& key) -> std::optional<std::string> {
        if (!key.starts_with(prefix)) return std::nullopt;
        const std::string rest = key.substr(prefix.size());
        if (!rest.starts_with("encoder.") && !rest.starts_with("decoder.") &&
            !rest.starts_with("quant_conv.") && !rest.starts_with("post_quant_conv.")) {
          return std::nullopt;  // other components of a whole checkpoint used as a VAE
        }
        if (diffusers_names) return rest;
        auto name = ldm_vae_key_to_diffusers(rest, blocks);
        if (!name) {
          throw Error(ErrorCode::kUnsupported,
                      "tensor '" + key + "' has no counterpart in a VAE this engine knows");
        }
        return name;
      });
  squeeze_vae_attention_weights(vae.weights);
  return vae;
}

Prediction prediction_from_norm_bias(const TensorFile& file, Family family,
                                     const std::string& bias) {
  if (family != Family::kSD2 || !file.find(bias)) return Prediction::kEpsilon;
  // SD2 v-models have visibly larger norm biases in the last output block (ComfyUI's heuristic).
  return stored_std(file, bias) > 0.09 ? Prediction::kVPrediction : Prediction::kEpsilon;
}

UNetConfig infer_ldm_unet_config(const TensorFile& file, const std::string& prefix,
                                 Family family) {
  return infer_unet_config(KeyIndex(file), family, prefix);
}

ClipTextConfig infer_clip_text_config(const TensorFile& file, const std::string& prefix) {
  return infer_transformers_clip_config(KeyIndex(file), prefix);
}

ClipTextConfig infer_open_clip_text_config(const TensorFile& file, const std::string& prefix,
                                           Family family) {
  return infer_open_clip_config(KeyIndex(file), prefix, family);
}

}  // namespace df::engine
