// CLIP text transformer (transformers CLIPTextModel / CLIPTextModelWithProjection) in libtorch.
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "engine/model_config.h"
#include "engine/weights.h"

namespace df::engine {

struct ClipTextOutput {
  // [0] = token + position embeddings, [i] = output of layer i (no final LayerNorm);
  // layers + 1 entries of [B, L, hidden].
  std::vector<at::Tensor> hidden_states;
  at::Tensor last_hidden_state;  // final_layer_norm(output of the last layer), [B, L, hidden]
  // last_hidden_state at each row's first end-of-text token, projected by text_projection when the
  // config has one: [B, hidden] or [B, projection_dim].
  at::Tensor pooled;
};

// Vectors that take the token embedding's place at some input positions (textual-inversion
// embeddings): `positions` [B, L] bool, `vectors` [B, L, hidden] (read where positions is true).
// Undefined tensors replace nothing.
struct ReplacedTokenEmbeddings {
  at::Tensor positions;
  at::Tensor vectors;
};

// Weights use the transformers names without the "text_model." prefix
// (embeddings.token_embedding.weight, encoder.layers.0.self_attn.q_proj.weight, final_layer_norm.*)
// plus text_projection.weight when config.with_projection. Runs in the dtype/device of the weights.
class ClipTextModel {
 public:
  ClipTextModel(ClipTextConfig config, Weights weights);

  // input_ids: [B, L] integer token ids, L <= max_position_embeddings; every row must contain
  // eos_token_id (the tokenizer's end-of-text id), where the pooled output is taken. `replaced`
  // puts other vectors in place of the token embeddings at its positions (the ids there are
  // ignored but must still be valid).
  ClipTextOutput forward(const at::Tensor& input_ids, int eos_token_id,
                         const ReplacedTokenEmbeddings& replaced = {}) const;

  const ClipTextConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  // The final LayerNorm applied to a hidden state (what last_hidden_state gets).
  at::Tensor final_layer_norm(const at::Tensor& hidden) const;

 private:
  void check_input_ids(const at::Tensor& input_ids, int eos_token_id) const;
  void check_replaced(const ReplacedTokenEmbeddings& replaced, const at::Tensor& input_ids) const;
  at::Tensor input_embeddings(const at::Tensor& ids, const ReplacedTokenEmbeddings& replaced) const;

  ClipTextConfig config_;
  Weights weights_;
};

}  // namespace df::engine
