// FLUX.1's text side as ComfyUI builds it: T5-XXL states for the context, CLIP-L's pooled output.
#pragma once

#include <memory>
#include <string>

#include "engine/text/prompt_encoder.h"
#include "engine/text/t5_encoder.h"
#include "engine/text/t5_tokenizer.h"

namespace df::engine::flux {

// ComfyUI's FluxClipModel (comfy/text_encoders/flux.py): the T5 tokens (one weighted sequence +
// EOS, padded to 256) give the context, T5's final states [1, max(256, n + 1), d_model] with
// ComfyUI's token weighting and no attention mask; the CLIP-L tokens (SD's 77-token chunks) give
// only the pooled output [1, 768], CLIP-L's pooler output without text_projection. Both float32.
class FluxPromptEncoder : public PromptEncoder {
 public:
  FluxPromptEncoder(TextEncoder clip_l, T5Tokenizer t5_tokenizer, T5Encoder t5);

  Family family() const override { return Family::kFlux; }
  // CLIPTextEncode: the same prompt for both encoders.
  Conditioning encode(const std::string& prompt) const override;
  // CLIPTextEncodeFlux: `clip_l_text` for CLIP-L's pooled output, `t5xxl_text` for the context.
  Conditioning encode_parts(const std::string& clip_l_text, const std::string& t5xxl_text) const;

 private:
  TextEncoder clip_l_;
  T5Tokenizer t5_tokenizer_;
  T5Encoder t5_;
};

// Which of DualCLIPLoader's two files is which: true when the file at `path` holds a T5 encoder
// ("encoder.final_layer_norm.weight"), false otherwise (taken as CLIP). TensorFile::open's errors.
bool holds_t5_encoder(const std::string& path);

// DualCLIPLoader type "flux": `clip_l_path` and `t5_path` (holds_t5_encoder tells them apart),
// both placed on `device` in `dtype` (resolve_placement's names; T5 runs with float32
// activations, see T5Encoder); CLIP's vocabulary as load_clip_text_encoder finds it with
// `clip_vocab_dir`, T5's tokenizer at `t5_tokenizer_path`. Errors as the loaders.
std::shared_ptr<const PromptEncoder> load_flux_prompt_encoder(const std::string& clip_l_path,
                                                              const std::string& t5_path,
                                                              const std::string& t5_tokenizer_path,
                                                              const std::string& clip_vocab_dir,
                                                              const std::string& device,
                                                              const std::string& dtype);

}  // namespace df::engine::flux
