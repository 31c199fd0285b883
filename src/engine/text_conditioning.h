// Prompt to conditioning: tokenizers + CLIP encoders of a checkpoint, with ComfyUI's weighting rules.
#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/clip_text.h"
#include "engine/model_config.h"
#include "engine/prompt_weights.h"
#include "engine/tokenizer.h"

namespace df::engine {

// What CLIPTextEncode produces: cross-attention context and (SDXL) the pooled text embedding.
struct Conditioning {
  at::Tensor context;  // [1, 77*chunks, C]
  at::Tensor pooled;   // [1, P] (undefined for SD1/SD2)
};

// One tokenizer + encoder pair.
struct TextEncoder {
  ClipTokenizer tokenizer;
  ClipTextModel model;
};

class TextConditioner {
 public:
  TextConditioner(Family family, std::vector<TextEncoder> encoders, at::Device device);

  // ComfyUI CLIPTextEncode semantics: per-word tokenization, (word:w) weights interpolated from the
  // empty prompt's encoding, 75-token chunks concatenated along the sequence.
  Conditioning encode(const std::string& prompt) const;
  // Token chunks exactly as encode() feeds them (for tests and diagnostics).
  std::vector<std::vector<WeightedToken>> tokenize(const std::string& prompt, size_t encoder) const;

  Family family() const { return family_; }
  const std::vector<TextEncoder>& encoders() const { return encoders_; }

 private:
  struct EncodedChunks {
    at::Tensor hidden;  // [chunks, 77, C], weights applied
    at::Tensor pooled;  // [1, P] of the first chunk
  };
  EncodedChunks encode_with(const TextEncoder& encoder, const std::string& prompt) const;
  at::Tensor select_hidden(const ClipTextOutput& output) const;

  Family family_;
  std::vector<TextEncoder> encoders_;
  at::Device device_;
};

}  // namespace df::engine
