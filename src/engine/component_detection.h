// What a UNet or text-encoder file stored on its own holds (ComfyUI's models/diffusion_models and
// models/text_encoders): naming, family and kind from tensor names and shapes (no libtorch).
#pragma once

#include <optional>
#include <string>

#include "engine/model_config.h"
#include "engine/tensor_file.h"

namespace df::engine {

// How a standalone UNet names its tensors: the original LDM names ("input_blocks.1.0...") or
// diffusers' ("down_blocks.0.resnets.0..."), after `prefix` ("" or "model.diffusion_model.").
enum class UNetNaming { kLdm, kDiffusers };
struct UNetFileLayout {
  std::string prefix;
  UNetNaming naming;
};
// Throws Error(kUnsupported) naming the tensor groups found when the file holds no UNet.
UNetFileLayout detect_unet_layout(const TensorFile& file);

// The family of a standalone UNet from its cross-attention width: 768 SD1, 1024 SD2, 2048 SDXL,
// 1280 the SDXL refiner (those two have the pooled-text label embedding). Other widths (small test
// models): SDXL with a label embedding, else SD2 when its transformers project linearly, else SD1.
Family detect_unet_family(const TensorFile& file, const UNetFileLayout& layout);

// The diffusers config of a diffusers-named UNet, inferred from shapes with the single-file rules
// (SD1 has 8 heads, the others 64-wide heads; SDXL's time ids embed 256 wide). Throws
// Error(kUnsupported) when a needed tensor is missing or has another rank.
UNetConfig infer_diffusers_unet_config(const TensorFile& file, const std::string& prefix,
                                       Family family);
// The name of the norm bias in the UNet's last transformer block under `layout`'s naming, which
// ComfyUI's SD2 v-prediction heuristic reads.
std::string last_transformer_norm_bias(const UNetFileLayout& layout, const UNetConfig& config);

// The text encoders the SD families use: OpenAI's CLIP ViT-L (SD1, SDXL's first), OpenCLIP ViT-H
// (SD2) and OpenCLIP ViT-bigG (SDXL's second, the refiner's only one).
enum class TextEncoderKind { kClipL, kOpenClipH, kOpenClipG };
std::string text_encoder_kind_name(TextEncoderKind kind);  // "CLIP-L", "CLIP-H", "CLIP-G"

// transformers names ("text_model.encoder.layers..." or without "text_model.") or OpenCLIP's
// ("transformer.resblocks...", "token_embedding.weight", ...).
enum class ClipNamingScheme { kTransformers, kOpenClip };
struct TextEncoderFileLayout {
  ClipNamingScheme naming;
  TextEncoderKind kind;
  int hidden_size;
  int layers;
  bool has_projection;
};
// The kind comes from the width (768 L, 1024 H, 1280 G); for other widths (small test models)
// from the config the engine stored in the metadata ("dreamforge.text_encoder_config": quick GELU
// is CLIP-L, else CLIPTextModelWithProjection CLIP-G, else CLIP-H), else from the naming
// (transformers names CLIP-L, OpenCLIP names CLIP-G with a projection, CLIP-H without).
// Throws Error(kUnsupported) naming the tensor groups found when the file holds no CLIP text model.
TextEncoderFileLayout detect_text_encoder(const TensorFile& file);

}  // namespace df::engine
