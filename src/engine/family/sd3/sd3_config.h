// The SD3 / SD3.5 MMDiT's configuration (torch-free): diffusers config.json, inference from a
// state dict's names and shapes, the tensor layout in Stability's original names, tiny configs.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/weight_layout.h"

namespace df::engine::sd3 {

// How queries and keys are normalised per head before attention.
enum class QkNorm {
  kNone,  // SD3 Medium
  kRms,   // SD3.5 (RMSNorm with a learned scale, eps 1e-6)
};

struct Sd3Config {
  int64_t patch_size = 2;
  int64_t in_channels = 16;
  int64_t out_channels = 16;
  int64_t depth = 24;  // joint blocks; the last one's context stream is "pre only"
  int64_t num_heads = 24;
  int64_t head_dim = 64;
  int64_t joint_attention_dim = 4096;     // text token states in
  int64_t caption_projection_dim = 1536;  // context stream width (equals hidden_size())
  int64_t pooled_projection_dim = 2048;   // pooled CLIP-L + CLIP-G
  int64_t pos_embed_max_size = 192;       // learned position grid side, cropped at the centre
  int64_t sample_size = 128;              // diffusers' nominal latent size (config only)
  QkNorm qk_norm = QkNorm::kNone;
  // Blocks whose image stream has a second self-attention (x_block.attn2; SD3.5 Medium: 0..12).
  std::vector<int64_t> dual_attention_layers;

  int64_t hidden_size() const { return num_heads * head_dim; }
  bool has_dual_attention(int64_t block) const;
  // The last block's context stream only feeds the attention (no projection, no MLP).
  bool context_pre_only(int64_t block) const { return block == depth - 1; }

  // A diffusers SD3Transformer2DModel config.json. Throws Error(kCorruptFile) for a malformed
  // config, Error(kUnsupported) for one this implementation cannot run (another qk_norm, a
  // caption projection narrower or wider than the hidden size).
  static Sd3Config from_diffusers_json(const nlohmann::json& config);
  nlohmann::json to_diffusers_json() const;

  // The config of a state dict in Stability's names (prefix already stripped), as ComfyUI's model
  // detection reads it: sizes from the patch embedding, the context embedder, the pooled
  // embedder, the position grid and the final layer; blocks counted; the head width from the qk
  // norm scale where present, otherwise ComfyUI's rule of one 64-wide head per block (heads ==
  // depth). Throws Error(kUnsupported) when the names are not an SD3 MMDiT's, Error(kCorruptFile)
  // for inconsistent shapes.
  static Sd3Config infer_from_keys(const std::vector<TensorShape>& tensors);

  // Throws Error(kUnsupported) unless every size is positive and consistent.
  void validate() const;

  bool operator==(const Sd3Config&) const = default;
};

// Whether a state dict in Stability's names (prefix stripped) holds an SD3 MMDiT.
bool is_sd3_mmdit(const std::vector<TensorShape>& tensors);

// Every tensor of the MMDiT in Stability's original names (x_embedder.proj, pos_embed,
// t_embedder.mlp.0/2, y_embedder.mlp.0/2, context_embedder, joint_blocks.N.{x_block,
// context_block}.*, final_layer.*), in module order. Computes nothing and allocates no tensor.
std::vector<TensorShape> sd3_transformer_layout(const Sd3Config& config);

// A tiny MMDiT for tests that the real pipeline can run: 16 latent channels, patch 2, 2 blocks of
// 2 heads x 16, 32-wide text states, 64-wide pooled vector, a 64x64 position grid (latents up to
// 128x128). `qk_norm` adds SD3.5's RMS qk norm; `dual_attention` SD3.5 Medium's attn2 in block 0.
Sd3Config tiny_sd3_config(bool qk_norm = false, bool dual_attention = false);

}  // namespace df::engine::sd3
