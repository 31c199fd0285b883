// The pre-LayerNorm transformer layer shared by the CLIP text and vision encoders.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "engine/weights.h"

namespace df::engine {

// How a CLIP encoder's layers run: heads, LayerNorm epsilon, MLP activation ("quick_gelu" or
// "gelu") and whether attention is causal (text) or sees every position (vision).
struct ClipLayerOptions {
  int64_t heads = 12;
  double layer_norm_eps = 1e-5;
  std::string activation = "quick_gelu";
  bool causal = false;
};

// Whether `activation` is one clip_encoder_layer runs.
bool is_clip_activation(const std::string& activation);

// One transformers CLIPEncoderLayer (layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2,
// mlp.fc1/fc2 under `w`): x + attention(LN(x)), then + MLP(LN(.)). x [B, L, C] -> [B, L, C].
at::Tensor clip_encoder_layer(const Weights& w, const at::Tensor& x,
                              const ClipLayerOptions& options);

}  // namespace df::engine
