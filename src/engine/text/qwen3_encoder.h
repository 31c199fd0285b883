// Qwen3 text encoder (transformers' Qwen3Model) on libtorch: the hidden states Z-Image conditions on.
#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/text/qwen3_config.h"
#include "engine/weights.h"

namespace df::engine {

// transformers' Qwen3Model: token embedding, decoder layers (RMSNorm, grouped-query attention
// with per-head q_norm/k_norm RMSNorm and half-split RoPE, causal and padding-masked; RMSNorm,
// SwiGLU MLP), final RMSNorm. Weights use transformers' names ("model.embed_tokens.weight",
// "model.layers.N.self_attn.q_proj.weight", ...; see qwen3_layout). Computes in the dtype and on
// the device of its weights.
class Qwen3Encoder {
 public:
  // Throws Error(kCorruptFile) naming the tensor when one of qwen3_layout(config) is missing or
  // shaped differently; other tensors (e.g. "lm_head.weight") are ignored.
  Qwen3Encoder(Qwen3Config config, Weights weights);

  // Reads one weights file holding a Qwen3 model, under "model." (a causal-LM file such as
  // ComfyUI's qwen_3_4b.safetensors; "lm_head.weight" is skipped) or unprefixed (a saved
  // Qwen3Model), infers its config from the shapes and converts floating tensors to `dtype`
  // (CPU). Throws what
  // TensorFile::open and the constructor throw, and Error(kUnsupported) for a file that holds no
  // Qwen3 model.
  static Qwen3Encoder load(const std::string& path, at::ScalarType dtype);
  // The same for a model sharded over `paths` (a diffusers text_encoder/'s
  // model-0000N-of-0000M.safetensors), read as one file.
  static Qwen3Encoder load(const std::vector<std::string>& paths, at::ScalarType dtype);

  // The entry `layer` of transformers' output_hidden_states tuple: 0 the token embeddings, k in
  // 1..N-1 the output of decoder layer k-1, N the final-normed output; negative values count
  // from the end (-1 = N, -2 = the second-to-last layer's output before the final norm, which
  // Z-Image uses). Decoder layers after the requested one are not run. ids [B, L] integer
  // token ids; attention_mask [B, L] nonzero for real tokens (undefined: all real); positions are
  // 0..L-1 whatever the mask (as transformers without position_ids), so pad on the right. Returns
  // [B, L, hidden]. Throws Error(kInvalidArgument) for other shapes, ids outside the vocabulary
  // or a layer outside -(N+1)..N.
  at::Tensor hidden_states(const at::Tensor& ids, const at::Tensor& attention_mask, int layer) const;

  const Qwen3Config& config() const { return config_; }
  const Weights& weights() const { return weights_; }

 private:
  at::Tensor decoder_layer(const Weights& w, const at::Tensor& x, const at::Tensor& rope,
                           const at::Tensor& mask) const;
  at::Tensor self_attention(const Weights& w, const at::Tensor& x, const at::Tensor& rope,
                            const at::Tensor& mask) const;

  Qwen3Config config_;
  Weights weights_;
};

}  // namespace df::engine
