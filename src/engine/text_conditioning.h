// Prompt to conditioning: tokenizers + CLIP encoders of a checkpoint, with ComfyUI's weighting rules.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/clip_text.h"
#include "engine/embedding_files.h"
#include "engine/model_config.h"
#include "engine/prompt_weights.h"
#include "engine/tokenizer.h"
#include "engine/unclip.h"

namespace df::engine {

struct ControlLink;  // engine/control/control_chain.h

// Where a conditioning applies (ComfyUI's "area"): in latent cells, or as fractions of the
// latent's height and width when `relative` (ConditioningSetAreaPercentage).
struct ConditioningArea {
  bool relative = false;
  double height = 0, width = 0, y = 0, x = 0;
};

// SDXL's size conditioning as CLIPTextEncodeSDXL sets it (pixels).
struct SdxlSizeConditioning {
  double width = 1024, height = 1024, crop_w = 0, crop_h = 0;
  double target_width = 1024, target_height = 1024;
};

// One entry of ComfyUI's CONDITIONING list: what CLIPTextEncode produces (cross-attention context
// and, for SDXL, the pooled text embedding) plus the options the conditioning nodes set. The
// defaults apply the context everywhere, at every step, with weight 1.
struct Conditioning {
  at::Tensor context;  // [1, 77*chunks, C]
  at::Tensor pooled;   // [1, P] (undefined for SD1/SD2)
  std::optional<ConditioningArea> area;
  double strength = 1.0;
  at::Tensor mask;  // [N, H, W] float (any size: resized to the latent), undefined for none
  double mask_strength = 1.0;
  bool mask_sets_area = false;  // ConditioningSetMask's "mask bounds"
  double start_percent = 0.0, end_percent = 1.0;
  std::optional<SdxlSizeConditioning> sdxl_size;
  std::optional<double> aesthetic_score;  // the SDXL refiner's
  // The ControlNets applied to this entry (the last applied; it links to the earlier ones), and
  // whether negative entries without one take it (ControlNetApply's control_apply_to_uncond).
  std::shared_ptr<const ControlLink> control;
  bool control_applies_to_negative = false;
  std::vector<UnclipImage> unclip;  // unCLIPConditioning's image embeddings, in order
  // Extra UNet inputs (ComfyUI's concat_latent_image, unscaled [B,C,h,w], and concat_mask
  // [B,H,W]) set by InpaintModelConditioning / InstructPixToPixConditioning; undefined: none.
  at::Tensor concat_latent_image;
  at::Tensor concat_mask;
  // The DiT families' extras: which context tokens are real ([1, L] bool; undefined: all), and
  // FLUX.1 dev's distilled guidance scale (FluxGuidance; unset: 3.5).
  at::Tensor context_mask;
  std::optional<double> guidance;
};

// ComfyUI's CONDITIONING value: entries whose predictions are averaged, weighted by their areas,
// masks and strengths.
using ConditioningList = std::vector<Conditioning>;

// One tokenizer + encoder pair.
struct TextEncoder {
  ClipTokenizer tokenizer;
  ClipTextModel model;
};

class TextConditioner {
 public:
  TextConditioner(Family family, std::vector<TextEncoder> encoders, at::Device device);

  // ComfyUI CLIPTextEncode semantics: per-word tokenization, (word:w) weights interpolated from the
  // empty prompt's encoding, 75-token chunks concatenated along the sequence. "embedding:NAME"
  // puts the vectors of the embedding the finder (with_embeddings) gives for NAME in the prompt
  // (see tokenize_weighted); vectors of another width than an encoder's are left out of that
  // encoder's input with a warning, as ComfyUI does. Throws Error(kUnsafeFormat) for a pickle
  // embedding and Error(kCorruptFile) for a broken one.
  Conditioning encode(const std::string& prompt) const;
  // CLIPTextEncodeSDXL: the CLIP-L encoder reads `text_l`, the CLIP-G encoder `text_g`.
  // Throws Error(kInvalidArgument) for a CLIP that is not SDXL's pair.
  Conditioning encode_sdxl(const std::string& text_l, const std::string& text_g) const;
  // Token chunks exactly as encode() feeds them (for tests and diagnostics).
  std::vector<std::vector<WeightedToken>> tokenize(const std::string& prompt, size_t encoder) const;

  Family family() const { return family_; }
  const std::vector<TextEncoder>& encoders() const { return encoders_; }
  size_t encoder_count() const { return encoders_.size(); }
  // The weights of encoder `i` (transformers names under "text_model.").
  const Weights& encoder_weights(size_t i) const { return encoders_.at(i).model.weights(); }

  // CLIPSetLastLayer: a copy taking the output of layer `stop_at_clip_layer` (-1 the last, -2
  // the one before, ...; counted over the encoder's original layers) instead of the family's
  // default. 0 restores the default.
  TextConditioner with_last_layer(int stop_at_clip_layer) const;
  // A copy whose encoder i runs on `weights[i]` (patched copies of encoder_weights(i)).
  TextConditioner with_encoder_weights(const std::vector<Weights>& weights) const;
  // A copy that finds the embeddings prompts name with `finder` (none are found without one).
  TextConditioner with_embeddings(EmbeddingFinder finder) const;

 private:
  struct EncodedChunks {
    at::Tensor hidden;  // [chunks, 77, C], weights applied
    at::Tensor pooled;  // [1, P] of the first chunk
  };
  class EmbeddingTable;
  EncodedChunks encode_chunks(const TextEncoder& encoder, const EmbeddingTable& embeddings,
                              std::vector<std::vector<WeightedToken>> chunks) const;
  // One prompt per encoder; the encoder with fewer chunks gets empty ones appended.
  Conditioning encode_each(const std::vector<std::string>& prompts) const;
  at::Tensor select_hidden(const TextEncoder& encoder, const ClipTextOutput& output) const;

  Family family_;
  int stop_at_clip_layer_ = 0;  // 0: the family's default layer
  std::vector<TextEncoder> encoders_;
  at::Device device_;
  EmbeddingFinder embedding_finder_;
};

}  // namespace df::engine
