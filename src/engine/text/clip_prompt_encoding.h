// One CLIP text encoder of a split file (CLIP-L, CLIP-G) and a prompt's hidden states and pooled
// output from it, as ComfyUI's SDClipModel gives them to the DiT families (FLUX.1, SD3).
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "engine/text_conditioning.h"

namespace df::engine {

// The CLIP text encoder file at `path` read as CLIPLoader reads one (load_text_conditioner with
// type "stable_diffusion": transformers or OpenCLIP names; a CLIP-L runs without its
// text_projection, a CLIP-G keeps it), placed on `device` in `dtype` (resolve_placement's names).
// Its vocabulary is `NAME.tokenizer/` beside `NAME.safetensors` when that folder holds vocab.json,
// else `clip_vocab_dir`. Errors as load_text_conditioner.
TextEncoder load_clip_text_encoder(const std::string& path, const std::string& clip_vocab_dir,
                                   const std::string& device, const std::string& dtype);

struct ClipPromptEncoding {
  at::Tensor hidden;  // [1, 77 * chunks, hidden] float32, the token weights applied
  at::Tensor pooled;  // [1, P] float32: the first chunk's pooled output (unweighted)
};

// ComfyUI's encoding of `prompt` by one CLIP (SDTokenizer's weighted 77-token chunks,
// ClipTokenWeightEncoder's weighting): `hidden` is hidden_states[hidden_layer] counted from the
// end (-1: the last layer's output, -2: the one before; no final LayerNorm), each token with weight
// w != 1 moved to (h - empty) * w + empty against the empty prompt's states; `pooled` is the
// final-LayerNorm'd state at the first chunk's end-of-text token, projected only when the encoder
// keeps its text_projection (so CLIP-L's is the pooler output FLUX.1 and SD3 read, CLIP-G's the
// projected one SD3 reads). "embedding:NAME" words are dropped with ComfyUI's warning. Throws
// Error(kInvalidArgument) for a bad `hidden_layer`, bad weights or non-UTF-8 text.
ClipPromptEncoding encode_clip_prompt(const TextEncoder& encoder, const std::string& prompt,
                                      int hidden_layer = -1);

}  // namespace df::engine
