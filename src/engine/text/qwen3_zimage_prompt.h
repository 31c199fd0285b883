// Z-Image's prompt conditioning: ComfyUI's chat template, Qwen3 tokens, the second-to-last hidden layer.
//
// Follows ComfyUI (comfy/text_encoders/z_image.py, sd1_clip.py). diffusers' ZImagePipeline
// (_encode_prompt with apply_chat_template(enable_thinking=True)) renders the same text for one
// user message: "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n" (with thinking
// enabled Qwen3's template adds no empty <think> block), takes hidden_states[-2] and keeps the
// masked (real) tokens. Where they differ, this follows ComfyUI:
//   - no truncation (diffusers cuts the templated text at 512 tokens) and no padding;
//   - ComfyUI tokenizes with prompt weights disabled, so "(red hat:1.3)" stays literal text and no
//     weight is applied, but its escape step still turns "\(" and "\)" into "(" and ")";
//   - ComfyUI hands the states on as float32.
// Not handled: ComfyUI's "embedding:NAME" textual-inversion lookup inside Z-Image prompts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/text/qwen3_encoder.h"
#include "engine/text/tokenizers/byte_bpe_tokenizer.h"

namespace df::engine {

// The hidden_states index Z-Image conditions on (the second-to-last decoder layer, unnormed).
constexpr int kZImageHiddenLayer = -2;

// The text ComfyUI's Z-Image tokenizer encodes for `prompt`: "\(" and "\)" unescaped, then put in
// the user turn of the chat template followed by the assistant generation prompt.
std::string zimage_chat_text(const std::string& prompt);

// The token ids of zimage_chat_text(prompt). Throws Error(kInvalidArgument) for non-UTF-8 text.
std::vector<int32_t> zimage_prompt_ids(const ByteBpeTokenizer& tokenizer, const std::string& prompt);

struct ZImageTextEncoding {
  at::Tensor states;          // [1, L, hidden] float32: hidden_states[-2] of every token
  at::Tensor attention_mask;  // [1, L] int64, all ones (one prompt, never padded)
};

// Z-Image's conditioning for `prompt`, as ComfyUI's CLIPTextEncode hands it to the diffusion
// model.
ZImageTextEncoding encode_zimage_prompt(const ByteBpeTokenizer& tokenizer, const Qwen3Encoder& encoder,
                                        const std::string& prompt);

}  // namespace df::engine
