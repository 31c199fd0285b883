// SD3 / SD3.5's text side as ComfyUI builds it: CLIP-L, CLIP-G and T5-XXL, each optional.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/text/prompt_encoder.h"
#include "engine/text/t5_encoder.h"
#include "engine/text_conditioning.h"

namespace df::engine::sd3 {

// ComfyUI's fixed SD3 widths: the joint context is padded to T5-XXL's width, and an encoder that
// is missing adds zeros of its real width to the pooled vector (CLIP-L 768, CLIP-G 1280).
inline constexpr int64_t kContextWidth = 4096;
inline constexpr int64_t kClipLWidth = 768;
inline constexpr int64_t kClipGWidth = 1280;

// T5-XXL and its tokenizer.
struct Sd3T5 {
  T5Tokenizer tokenizer;
  T5Encoder encoder;
};

// The encoders a CLIP of type "sd3" holds. Both CLIPs give ComfyUI's penultimate layer without
// the final LayerNorm and their pooled output: CLIP-G's projected, CLIP-L's unprojected (it loads
// without its text_projection, as ComfyUI's SD3 CLIP-L returns the pooler output).
struct Sd3TextEncoders {
  std::optional<TextEncoder> clip_l;
  std::optional<TextEncoder> clip_g;
  std::optional<Sd3T5> t5xxl;
  at::Device device = at::kCPU;
};

// CLIPTextEncodeSD3's prompts; nullopt: the encoder gets no tokens at all (its empty_padding
// "none" with an empty text).
struct Sd3Prompts {
  std::optional<std::string> clip_l;
  std::optional<std::string> clip_g;
  std::optional<std::string> t5xxl;
};

class Sd3PromptEncoder : public PromptEncoder {
 public:
  explicit Sd3PromptEncoder(Sd3TextEncoders encoders);
  Family family() const override { return Family::kSD3; }
  // CLIPTextEncode: every encoder reads `prompt`.
  Conditioning encode(const std::string& prompt) const override;
  // ComfyUI's SD3 combination: context = [pad(cat(L, G, width), 4096) ; T5] along the sequence
  // (the CLIP with fewer 77-token chunks gets empty ones; a missing CLIP-L leaves zeros in its
  // 768 columns; without T5 the CLIP part alone; with nothing, 77 zero tokens); pooled =
  // cat(L pooled, G pooled), zeros for a missing encoder and for both CLIPs without tokens.
  // Throws Error(kUnsupported) for a T5 whose width is not 4096 when the CLIPs' context is padded
  // to it.
  Conditioning encode_prompts(const Sd3Prompts& prompts) const;
  // CLIPTextEncodeSD3 (empty_padding "none" when `pad_empty` is false: an empty text gives its
  // encoder no tokens).
  Conditioning encode_sd3(const std::string& clip_l, const std::string& clip_g,
                          const std::string& t5xxl, bool pad_empty) const;

  const Sd3TextEncoders& encoders() const { return encoders_; }

 private:
  struct ClipPart {
    at::Tensor context;  // [1, 77*chunks, L + G widths], float32
    at::Tensor pooled;   // [1, 768 + 1280 or the encoders' widths], float32
  };
  std::optional<ClipPart> encode_clips(const std::optional<std::string>& text_l,
                                       const std::optional<std::string>& text_g) const;
  at::Tensor encode_t5(const std::optional<std::string>& text) const;

  Sd3TextEncoders encoders_;
};

// The text encoder files of a CLIPLoader / DualCLIPLoader (type "sd3") or TripleCLIPLoader, in any
// order: each is told apart by its tensors (T5 by "encoder.block.*", CLIP-L / CLIP-G as the SD
// loaders tell them). CLIPs are read by load_clip_text_encoder (vocabulary beside the file or in
// `clip_vocab_dir`), T5 finds its tokenizer by t5_tokenizer_beside. Throws Error(kUnsupported)
// for a CLIP-H or two files of one kind, and the loaders' errors.
std::shared_ptr<const PromptEncoder> load_sd3_prompt_encoder(const std::vector<std::string>& paths,
                                                             const std::string& device,
                                                             const std::string& dtype,
                                                             const std::string& clip_vocab_dir);

}  // namespace df::engine::sd3
