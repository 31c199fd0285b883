// Standalone UNet and text-encoder files: naming, family and kind from tensor names and shapes.
#include "engine/component_detection.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/key_index.h"

namespace df::engine {
namespace {

constexpr const char* kTextEncoderConfigKey = "dreamforge.text_encoder_config";

// A file's tensor names with the shape look-ups detection needs.
class TensorNames : public KeyIndex {
 public:
  using KeyIndex::KeyIndex;

  // Dimension `dim` of a tensor that must exist with `rank` dimensions.
  int dim(const std::string& name, size_t rank, size_t dim) const {
    const auto* info = file().find(name);
    if (!info || info->shape.size() != rank) {
      throw Error(ErrorCode::kUnsupported,
                  "'" + file().path() + "' has no " + std::to_string(rank) +
                      "-dimensional tensor '" + name + "', which a model of its kind should have");
    }
    return static_cast<int>(info->shape[dim]);
  }
  size_t rank(const std::string& name) const {
    const auto* info = file().find(name);
    return info ? info->shape.size() : 0;
  }
  // "123 tensors such as 'a.b.c'", for errors about files of an unknown kind.
  std::string describe() const {
    std::string text = std::to_string(names().size()) + " tensors";
    if (!names().empty()) text += " such as '" + *names().begin() + "'";
    return text;
  }
};

// Where a UNet's family markers live under each naming.
struct UNetMarkers {
  std::string context_key;  // a cross-attention key projection [C, context width]
  std::string label_key;    // SDXL's pooled-text embedding
  std::string proj_in;      // a transformer's input projection: 2-D when linear
};

UNetMarkers unet_markers(const UNetFileLayout& layout) {
  const std::string& p = layout.prefix;
  if (layout.naming == UNetNaming::kLdm) {
    return {p + "middle_block.1.transformer_blocks.0.attn2.to_k.weight", p + "label_emb.0.0.weight",
            p + "middle_block.1.proj_in.weight"};
  }
  return {p + "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight",
          p + "add_embedding.linear_1.weight", p + "mid_block.attentions.0.proj_in.weight"};
}

int heads_of_width_64(int channels, const std::string& path) {
  if (channels <= 0 || channels % 64 != 0) {
    throw Error(ErrorCode::kUnsupported,
                "cannot infer the attention heads of the UNet in '" + path + "': " +
                    std::to_string(channels) + " channels are not a multiple of 64 (store the "
                    "diffusers config in the file's metadata)");
  }
  return channels / 64;
}

// What the encoder config the engine stored in the file says of its kind, if it says anything:
// quick GELU is OpenAI's CLIP-L; of the OpenCLIP models only CLIP-G has the projection.
std::optional<TextEncoderKind> stored_kind(const TensorFile& file) {
  auto it = file.metadata().find(kTextEncoderConfigKey);
  if (it == file.metadata().end()) return std::nullopt;
  const auto config = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object() || !config.contains("hidden_act") || !config["hidden_act"].is_string()) {
    return std::nullopt;
  }
  if (config["hidden_act"] == "quick_gelu") return TextEncoderKind::kClipL;
  const auto architectures = config.value("architectures", nlohmann::json::array());
  const bool projected =
      architectures.is_array() &&
      std::find(architectures.begin(), architectures.end(), "CLIPTextModelWithProjection") !=
          architectures.end();
  return projected ? TextEncoderKind::kOpenClipG : TextEncoderKind::kOpenClipH;
}

TextEncoderKind kind_of(const TextEncoderFileLayout& layout, const TensorFile& file) {
  switch (layout.hidden_size) {
    case 768: return TextEncoderKind::kClipL;
    case 1024: return TextEncoderKind::kOpenClipH;
    case 1280: return TextEncoderKind::kOpenClipG;
    default: break;
  }
  if (auto kind = stored_kind(file)) return *kind;
  if (layout.naming == ClipNamingScheme::kTransformers) return TextEncoderKind::kClipL;
  return layout.has_projection ? TextEncoderKind::kOpenClipG : TextEncoderKind::kOpenClipH;
}

}  // namespace

UNetFileLayout detect_unet_layout(const TensorFile& file) {
  const TensorNames names(file);
  for (const char* prefix : {"model.diffusion_model.", ""}) {
    const std::string p = prefix;
    if (names.has(p + "input_blocks.0.0.weight")) return {p, UNetNaming::kLdm};
    if (names.has(p + "conv_in.weight") && names.has_prefix(p + "down_blocks.")) {
      return {p, UNetNaming::kDiffusers};
    }
  }
  throw Error(ErrorCode::kUnsupported,
              "'" + file.path() +
                  "' holds no UNet this engine knows (input_blocks.* or down_blocks.*, bare or "
                  "under model.diffusion_model.); it has " + names.describe(),
              {{"path", file.path()}});
}

Family detect_unet_family(const TensorFile& file, const UNetFileLayout& layout) {
  const TensorNames names(file);
  const UNetMarkers markers = unet_markers(layout);
  const int context = names.dim(markers.context_key, 2, 1);
  if (names.has(markers.label_key)) return context == 1280 ? Family::kSDXLRefiner : Family::kSDXL;
  if (context == 768) return Family::kSD1;
  if (context == 1024) return Family::kSD2;
  return names.rank(markers.proj_in) == 2 ? Family::kSD2 : Family::kSD1;
}

UNetConfig infer_diffusers_unet_config(const TensorFile& file, const std::string& p,
                                       Family family) {
  const TensorNames names(file);
  UNetConfig c;
  c.in_channels = names.dim(p + "conv_in.weight", 4, 1);
  c.out_channels = names.dim(p + "conv_out.weight", 4, 0);
  const int levels = names.count_indexed(p + "down_blocks.");
  c.layers_per_block = names.count_indexed(p + "down_blocks.0.resnets.");
  if (levels < 1 || c.layers_per_block < 1 || names.count_indexed(p + "up_blocks.") != levels) {
    throw Error(ErrorCode::kUnsupported, "'" + file.path() +
                                             "' has a UNet block layout this engine does not "
                                             "know (" + std::to_string(levels) + " down blocks)");
  }
  for (int level = 0; level < levels; ++level) {
    const std::string block = p + "down_blocks." + std::to_string(level) + ".";
    c.block_out_channels.push_back(names.dim(block + "resnets.0.conv2.weight", 4, 0));
    const bool attention = names.has_prefix(block + "attentions.0.");
    c.down_block_types.push_back(attention ? "CrossAttnDownBlock2D" : "DownBlock2D");
    const int depth = names.count_indexed(block + "attentions.0.transformer_blocks.");
    c.transformer_layers_per_block.push_back(attention ? depth : 1);
    c.num_attention_heads.push_back(
        family == Family::kSD1 ? 8 : heads_of_width_64(c.block_out_channels.back(), file.path()));
    const bool up_attention = names.has_prefix(p + "up_blocks." + std::to_string(level) +
                                               ".attentions.0.");
    c.up_block_types.push_back(up_attention ? "CrossAttnUpBlock2D" : "UpBlock2D");
  }
  const UNetMarkers markers = unet_markers({p, UNetNaming::kDiffusers});
  c.cross_attention_dim = names.dim(markers.context_key, 2, 1);
  c.use_linear_projection = names.rank(markers.proj_in) == 2;
  if (names.has(markers.label_key)) {
    c.addition_embed_type = "text_time";
    c.projection_class_embeddings_input_dim = names.dim(markers.label_key, 2, 1);
  }
  c.sample_size = family == Family::kSD1 || family == Family::kSD2 ? 64 : 128;
  return c;
}

std::string last_transformer_norm_bias(const UNetFileLayout& layout, const UNetConfig& config) {
  const int levels = static_cast<int>(config.block_out_channels.size());
  const std::string block = layout.naming == UNetNaming::kLdm
                                ? "output_blocks." +
                                      std::to_string(levels * (config.layers_per_block + 1) - 1) +
                                      ".1."
                                : "up_blocks." + std::to_string(levels - 1) + ".attentions." +
                                      std::to_string(config.layers_per_block) + ".";
  return layout.prefix + block + "transformer_blocks.0.norm1.bias";
}

std::string text_encoder_kind_name(TextEncoderKind kind) {
  switch (kind) {
    case TextEncoderKind::kClipL: return "CLIP-L";
    case TextEncoderKind::kOpenClipH: return "CLIP-H";
    case TextEncoderKind::kOpenClipG: return "CLIP-G";
  }
  return "unknown";
}

TextEncoderFileLayout detect_text_encoder(const TensorFile& file) {
  const TensorNames names(file);
  TextEncoderFileLayout layout{};
  std::string token_key;
  if (names.has("token_embedding.weight") && names.has_prefix("transformer.resblocks.")) {
    layout.naming = ClipNamingScheme::kOpenClip;
    token_key = "token_embedding.weight";
    layout.layers = names.count_indexed("transformer.resblocks.");
  } else {
    const bool nested = names.has("text_model.embeddings.token_embedding.weight");
    const std::string base = nested ? "text_model." : "";
    if (!names.has(base + "embeddings.token_embedding.weight")) {
      throw Error(ErrorCode::kUnsupported,
                  "'" + file.path() +
                      "' holds no CLIP text encoder this engine knows (transformers names "
                      "'text_model.*' or OpenCLIP names 'transformer.resblocks.*'); it has " +
                      names.describe(),
                  {{"path", file.path()}});
    }
    layout.naming = ClipNamingScheme::kTransformers;
    token_key = base + "embeddings.token_embedding.weight";
    layout.layers = names.count_indexed(base + "encoder.layers.");
  }
  layout.hidden_size = names.dim(token_key, 2, 1);
  layout.has_projection = names.has("text_projection") || names.has("text_projection.weight");
  layout.kind = kind_of(layout, file);
  return layout;
}

}  // namespace df::engine
