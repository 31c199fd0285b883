// The names a LoRA file gives the weights it patches (ComfyUI's LoRA key map), torch-free.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/model_config.h"

namespace df::engine {

// Which CLIP a text encoder is, as LoRA names tell them apart. kClipG is SDXL's second encoder
// (beside a CLIP-L); kClipGAlone the refiner's only one.
enum class TextEncoderKind { kClipL, kClipH, kClipG, kClipGAlone };

// The text encoders of a family in the engine's order: SD1 {L}, SD2 {H}, SDXL {L, G},
// refiner {G alone}.
std::vector<TextEncoderKind> text_encoder_kinds(Family family);

// The original (LDM) name of a diffusers UNet tensor or module name, the inverse of
// ldm_unet_key_to_diffusers ("down_blocks.1.attentions.0.proj_in.weight" ->
// "input_blocks.4.1.proj_in.weight"); nullopt for names outside the UNet's blocks.
std::optional<std::string> diffusers_unet_key_to_ldm(const std::string& key,
                                                     const UNetConfig& config);

// "prefix" + module with dots turned into underscores (kohya's names: "lora_unet_" +
// "down_blocks.0.attentions.0.proj_in" -> "lora_unet_down_blocks_0_attentions_0_proj_in").
std::string kohya_lora_name(const std::string& prefix, const std::string& module);

// Every name under which a LoRA may address the UNet tensor `key` (a diffusers name): kohya's
// lora_unet_/lycoris_ names of the diffusers and the LDM module, the diffusers names (with and
// without "unet.", old ".processor." attention names, PEFT's plain module names) and the generic
// "diffusion_model.<LDM name>". Names are module names (no ".weight") for weights; other tensors
// (biases) are addressed by their full generic name only.
std::vector<std::string> unet_lora_names(const std::string& key, const UNetConfig& config);

// Every name under which a LoRA may address the text-encoder tensor `key` (the engine's name:
// "encoder.layers.0.self_attn.q_proj.weight", "text_projection.weight"; a "text_model." prefix is
// allowed) of an encoder of `kind`:
// kohya's lora_te_/lora_te1_/lora_te2_ and the diffusers text_encoder(_2) names of the attention
// and MLP projections, the projection's names, and the generic "text_encoders.clip_x.transformer."
// names of every weight.
std::vector<std::string> text_encoder_lora_names(const std::string& key, TextEncoderKind kind);

// The text-encoder module name as transformers spells it ("encoder.layers.0.mlp.fc1" ->
// "text_model.encoder.layers.0.mlp.fc1"; "text_projection" stays as it is).
std::string transformers_text_module(const std::string& module);

}  // namespace df::engine
