// Z-Image's text side: the Qwen3 encoder and its tokenizer behind the PromptEncoder interface.
#pragma once

#include <memory>
#include <string>

#include "engine/text/prompt_encoder.h"
#include "engine/text/qwen3_encoder.h"
#include "engine/text/tokenizers/byte_bpe_tokenizer.h"

namespace df::engine::zimage {

class ZImagePromptEncoder : public PromptEncoder {
 public:
  ZImagePromptEncoder(ByteBpeTokenizer tokenizer, Qwen3Encoder encoder)
      : tokenizer_(std::move(tokenizer)), encoder_(std::move(encoder)) {}
  Family family() const override { return Family::kZImage; }
  // The chat-templated prompt's Qwen3 states (qwen3_zimage_prompt.h), every token real.
  Conditioning encode(const std::string& prompt) const override;

 private:
  ByteBpeTokenizer tokenizer_;
  Qwen3Encoder encoder_;
};

// CLIPLoader type "lumina2": the Qwen3 weights at `weights_path` (computed in `dtype`) with the
// tokenizer.json at `tokenizer_path`.
std::shared_ptr<const PromptEncoder> load_zimage_prompt_encoder(const std::string& weights_path,
                                                                const std::string& tokenizer_path,
                                                                at::ScalarType dtype);

}  // namespace df::engine::zimage
