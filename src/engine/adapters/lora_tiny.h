// Tiny random-weight LoRA files matched to the tiny test pipelines, for tests without downloads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model_config.h"

namespace df::engine {

// How the LoRA names and factors its tensors: kohya/A1111 LoRA ("lora_unet_*.lora_down.weight";
// SDXL under LDM names as kohya trains it), diffusers/PEFT ("unet.*.lora_A.weight"), LyCORIS LoHa
// (".hada_*") and LoKr (".lokr_*", kohya names).
enum class TinyLoraFormat { kKohya, kPeft, kLoha, kLokr };

// "kohya", "peft", "loha", "lokr".
const std::vector<std::string>& tiny_lora_format_names();
// Throws Error(kInvalidArgument) for other names.
TinyLoraFormat tiny_lora_format_from_name(const std::string& name);

// Writes a LoRA with random factors drawn from `seed` for the tiny pipeline of `family`
// (tiny_pipeline_config) to the .safetensors file `path`: every attention projection, proj_in/out,
// feed-forward and resnet convolution of the UNet and every attention and MLP projection of each
// text encoder, rank 4 with alpha 2 (none for PEFT), labelled as a test model. For FLUX.1 (dev),
// SD3 and Z-Image: every linear weight of the tiny split files' transformer, under kohya names of
// the original modules ("lora_unet_double_blocks_0_img_attn_qkv"), or for PEFT the diffusers
// modules ("transformer.transformer_blocks.0.attn.to_q"); no text-encoder tensors. The same arguments
// always give the same bytes. An existing file is replaced only when it is such a test LoRA
// (else Error(kInvalidArgument)); Error(kIo) when it cannot be written.
void write_tiny_lora(const std::string& path, Family family, TinyLoraFormat format, uint64_t seed);

// Whether `path` is a LoRA written by write_tiny_lora.
bool is_tiny_lora(const std::string& path);

}  // namespace df::engine
