// Standalone UNet and CLIP text-encoder files into the MODEL and CLIP values of the loader nodes.
#include "engine/component_loaders.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "engine/checkpoint.h"
#include "engine/family/dit_models.h"
#include "engine/family/families.h"
#include "engine/fp8_weights.h"
#include "engine/key_index.h"
#include "engine/ldm_keys.h"
#include "engine/safetensors.h"
#include "engine/unet_inputs.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

constexpr const char* kClipPad = "<|endoftext|>";
constexpr const char* kOpenClipPad = "!";
constexpr int kSdxlTimeEmbedWidth = 256;  // the width SDXL embeds each time id with

// ---- UNet ----

UNetConfig standalone_unet_config(const TensorFile& file, const UNetFileLayout& layout,
                                  Family family) {
  if (auto stored = metadata_config(file, kUNetConfigMetadata)) {
    return UNetConfig::from_json(*stored);
  }
  UNetConfig config = layout.naming == UNetNaming::kLdm
                          ? infer_ldm_unet_config(file, layout.prefix, family)
                          : infer_diffusers_unet_config(file, layout.prefix, family);
  if (!config.addition_embed_type.empty()) config.addition_time_embed_dim = kSdxlTimeEmbedWidth;
  return config;
}

NoiseScheduleConfig standalone_schedule(const TensorFile& file, const UNetFileLayout& layout,
                                        Family family, const UNetConfig& config) {
  const auto stored = metadata_config(file, kSchedulerConfigMetadata);
  NoiseScheduleConfig schedule = stored ? NoiseScheduleConfig::from_json(*stored)
                                        : NoiseScheduleConfig{};
  if (file.find("v_pred")) {
    schedule.prediction = Prediction::kVPrediction;
  } else if (!stored) {
    schedule.prediction =
        prediction_from_norm_bias(file, family, last_transformer_norm_bias(layout, config));
  }
  return schedule;
}

// Stored UNet names -> diffusers names; tensors outside the UNet's prefix are skipped.
TensorRename unet_rename(const UNetFileLayout& layout, int layers_per_block) {
  return [layout, layers_per_block](const std::string& key) -> std::optional<std::string> {
    if (!key.starts_with(layout.prefix) || key == "v_pred") return std::nullopt;
    const std::string rest = key.substr(layout.prefix.size());
    if (layout.naming == UNetNaming::kDiffusers) return rest;
    auto name = ldm_unet_key_to_diffusers(rest, layers_per_block);
    if (!name) {
      throw Error(ErrorCode::kUnsupported,
                  "tensor '" + key + "' has no counterpart in a UNet this engine knows");
    }
    return name;
  };
}

// ---- text encoders ----

ClipTextConfig standalone_text_config(const TensorFile& file,
                                      const TextEncoderFileLayout& layout) {
  const bool g = layout.kind == TextEncoderKind::kOpenClipG;
  ClipTextConfig config;
  if (auto stored = metadata_config(file, kTextEncoderConfigMetadata)) {
    config = ClipTextConfig::from_json(*stored);
  } else if (layout.naming == ClipNamingScheme::kOpenClip) {
    // OpenCLIP inference drops SD2's last layer itself.
    return infer_open_clip_text_config(file, "", g ? Family::kSDXL : Family::kSD2);
  } else {
    config = infer_clip_text_config(file, "");
    config.hidden_act = layout.kind == TextEncoderKind::kClipL ? "quick_gelu" : "gelu";
    // OpenCLIP ViT-H keeps 24 layers; SD2 conditions on the 23rd, so the last one is left out.
    if (layout.kind == TextEncoderKind::kOpenClipH && config.num_hidden_layers == 24) {
      config.num_hidden_layers = 23;
    }
  }
  config.with_projection = g;
  if (g && !layout.has_projection) {
    throw Error(ErrorCode::kCorruptFile,
                "'" + file.path() + "' is a CLIP-G text encoder without its text_projection");
  }
  return config;
}

// Whether a transformers name belongs to the encoder `config` describes (layers past its count
// and a projection it does not use are left out).
bool belongs_to_encoder(const std::string& name, const ClipTextConfig& config) {
  if (name == "text_projection.weight") return config.with_projection;
  const std::string layers = "text_model.encoder.layers.";
  if (!name.starts_with(layers)) return true;
  int index = 0;
  const char* first = name.data() + layers.size();
  const auto [end, error] = std::from_chars(first, name.data() + name.size(), index);
  return error != std::errc() || index < config.num_hidden_layers;  // odd names fail the check
}

// Stored text-encoder names -> transformers names; buffers, training leftovers and the image
// tower of a whole CLIP model are skipped.
TensorRename text_encoder_rename(const TextEncoderFileLayout& layout, const ClipTextConfig& config) {
  return [layout, config](const std::string& key) -> std::optional<std::string> {
    if (key.ends_with("position_ids") || key == "logit_scale" || key == "attn_mask" ||
        key.starts_with("vision_model.") || key.starts_with("visual_projection.")) {
      return std::nullopt;
    }
    std::optional<std::string> name;
    if (layout.naming == ClipNamingScheme::kOpenClip) {
      name = open_clip_key_to_hf(key);
    } else {
      // ComfyUI's CLIPSave wrote the projection as OpenCLIP's [D,P] "text_projection".
      name = key == "text_projection" ? "text_projection.weight" : hf_clip_key(key);
    }
    if (!name) {
      throw Error(ErrorCode::kUnsupported,
                  "tensor '" + key + "' has no counterpart in a CLIP text encoder this engine knows");
    }
    return belongs_to_encoder(*name, config) ? name : std::nullopt;
  };
}

// ClipTextModel takes names relative to the text model, with "text_projection.weight" beside.
Weights text_model_weights(TensorMap&& tensors) {
  const std::string prefix = "text_model.";
  TensorMap relative;
  for (auto& [key, tensor] : tensors) {
    relative.emplace(key.starts_with(prefix) ? key.substr(prefix.size()) : key, std::move(tensor));
  }
  return Weights(std::move(relative));
}

ClipTokenizer load_vocabulary(const std::string& dir, const std::string& pad,
                              const ClipTextConfig& config, const std::string& path) {
  if (dir.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "the text encoder file '" + path + "' carries no tokenizer, and no CLIP vocabulary "
                "is installed beside the executables (scripts/setup puts it in "
                "share/dreamforge/clip): set DREAMFORGE_CLIP_VOCAB_DIR (or the runner's "
                "--clip-vocab-dir) to a folder with the CLIP vocab.json and merges.txt");
  }
  ClipTokenizer tokenizer = ClipTokenizer::load(dir, pad);
  const int highest = std::max({tokenizer.bos_id(), tokenizer.eos_id(), tokenizer.pad_id()});
  if (highest >= config.vocab_size) {
    throw Error(ErrorCode::kInvalidArgument,
                "the tokenizer in '" + dir + "' has token ids up to " + std::to_string(highest) +
                    " but the text encoder '" + path + "' embeds only " +
                    std::to_string(config.vocab_size) + " tokens");
  }
  return tokenizer;
}

struct EncoderFile {
  std::string path;
  StandaloneTextEncoder encoder;
};

// The family a set of encoders conditions, in the order its TextConditioner takes them.
Family conditioner_family(const std::string& type, std::vector<EncoderFile>& files) {
  std::string kinds;
  for (const auto& file : files) {
    kinds += (kinds.empty() ? "" : " and ") + text_encoder_kind_name(file.encoder.kind);
  }
  if (files.size() == 1 && type == "stable_diffusion") {
    switch (files[0].encoder.kind) {
      case TextEncoderKind::kClipL: return Family::kSD1;
      case TextEncoderKind::kOpenClipH: return Family::kSD2;
      case TextEncoderKind::kOpenClipG: return Family::kSDXLRefiner;
    }
  }
  if (files.size() == 2 && type == "sdxl") {
    std::stable_sort(files.begin(), files.end(), [](const EncoderFile& a, const EncoderFile& b) {
      return a.encoder.kind == TextEncoderKind::kClipL && b.encoder.kind != TextEncoderKind::kClipL;
    });
    if (files[0].encoder.kind == TextEncoderKind::kClipL &&
        files[1].encoder.kind == TextEncoderKind::kOpenClipG) {
      return Family::kSDXL;
    }
    throw Error(ErrorCode::kUnsupported,
                "DualCLIPLoader type 'sdxl' needs a CLIP-L and a CLIP-G text encoder; got " +
                    kinds);
  }
  const bool dual = files.size() == 2;
  throw Error(ErrorCode::kUnsupported,
              std::string(dual ? "DualCLIPLoader" : "CLIPLoader") + " type '" + type +
                  "' is not supported: Dream Forge runs the Stable Diffusion 1.x/2.x/SDXL text "
                  "encoders only (type '" + (dual ? "sdxl" : "stable_diffusion") + "')",
              {{"type", type}});
}

}  // namespace

StandaloneUNet load_standalone_unet(const TensorFile& file, at::ScalarType dtype) {
  const UNetFileLayout layout = detect_unet_layout(file);
  StandaloneUNet unet;
  unet.family = detect_unet_family(file, layout);
  unet.config = standalone_unet_config(file, layout, unet.family);
  unet.schedule = standalone_schedule(file, layout, unet.family, unet.config);
  unet.weights = load_tensors_as(file, dtype, unet_rename(layout, unet.config.layers_per_block));
  check_tensor_layout(unet.weights, unet_tensor_layout(unet.config),
                      "the UNet of '" + file.path() + "'");
  return unet;
}

std::shared_ptr<const DiffusionModel> load_diffusion_model(
    const std::string& path, const std::string& device, const std::string& dtype,
    std::optional<at::ScalarType> fp8_storage) {
  if (!std::filesystem::is_directory(path)) {
    check_weights_path(path, "a diffusion model (.safetensors, .ckpt, .pt, .pth, .bin)");
    if (!fp8_storage) fp8_storage = quantized_weights_dtype(TensorFile::open(path));
  }
  if (const auto family = detect_dit_family(path)) {
    return load_dit_model(path, *family, resolve_placement(device, dtype, *family), fp8_storage);
  }
  const TensorFile file = TensorFile::open(path);
  StandaloneUNet unet = load_standalone_unet(file, at::kFloat);
  unet_extra_inputs(unet.config);  // refuses input channel counts no model type has
  const RuntimePlacement placement = resolve_placement(device, dtype, unet.family);
  if (fp8_storage) store_matrix_weights_in_fp8(unet.weights, *fp8_storage);
  Weights weights(std::move(unet.weights));
  weights.to(placement.dtype, placement.device);
  return std::make_shared<const DiffusionModel>(DiffusionModel{
      unet.family, UNet(unet.config, weights), nullptr, NoiseSchedule(unet.schedule),
      latent_format_of(unet.family), unet.family == Family::kSDXLRefiner, placement});
}

StandaloneTextEncoder load_standalone_text_encoder(const TensorFile& file,
                                                   at::ScalarType dtype) {
  const TextEncoderFileLayout layout = detect_text_encoder(file);
  StandaloneTextEncoder encoder;
  encoder.kind = layout.kind;
  encoder.config = standalone_text_config(file, layout);
  encoder.weights = load_tensors_as(file, dtype, text_encoder_rename(layout, encoder.config));
  if (layout.naming == ClipNamingScheme::kOpenClip || file.find("text_projection")) {
    split_open_clip_tensors(encoder.weights);  // fused q/k/v, [D,P] projection
  }
  check_tensor_layout(encoder.weights, clip_text_tensor_layout(encoder.config),
                      "the text encoder in '" + file.path() + "'");
  return encoder;
}

std::shared_ptr<const TextConditioner> load_text_conditioner(const TextEncoderLoadRequest& request) {
  std::vector<EncoderFile> files;
  for (const auto& path : request.paths) {
    check_weights_path(path, "a text encoder (.safetensors, .ckpt, .pt, .pth, .bin)");
    const TensorFile file = TensorFile::open(path);
    files.push_back({path, load_standalone_text_encoder(file, at::kFloat)});
  }
  const Family family = conditioner_family(request.type, files);
  const RuntimePlacement placement = resolve_placement(request.device, request.dtype, family);
  std::vector<TextEncoder> encoders;
  for (auto& [path, encoder] : files) {
    const bool clip_l = encoder.kind == TextEncoderKind::kClipL;
    ClipTokenizer tokenizer = load_vocabulary(request.clip_vocab_dir, clip_l ? kClipPad : kOpenClipPad,
                                              encoder.config, path);
    Weights weights = text_model_weights(std::move(encoder.weights));
    weights.to(placement.dtype, placement.device);
    encoders.push_back(TextEncoder{std::move(tokenizer), ClipTextModel(encoder.config, weights)});
  }
  return std::make_shared<const TextConditioner>(family, std::move(encoders), placement.device);
}

}  // namespace df::engine
