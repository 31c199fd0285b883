// The architecture of a Z-Image (Turbo) NextDiT transformer: read from a diffusers config.json,
// written back to one, or inferred from a weights file's tensor names and shapes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::engine::zimage {

// Tensor shapes by name, as a weights file lists them (names in the ComfyUI naming, see
// zimage_layout.h).
using ShapeIndex = std::map<std::string, std::vector<int64_t>>;

struct ZImageConfig {
  int64_t patch_size = 2;
  int64_t in_channels = 16;  // latent channels; the output has as many
  int64_t dim = 3840;
  int64_t n_layers = 30;
  int64_t n_refiner_layers = 2;  // noise_refiner and context_refiner blocks each
  int64_t n_heads = 30;
  int64_t n_kv_heads = 30;
  int64_t ffn_hidden_dim = 10240;  // SwiGLU width: diffusers int(dim / 3 * 8)
  double norm_eps = 1e-5;
  bool qk_norm = true;
  int64_t cap_feat_dim = 2560;  // text hidden size (Qwen3-4B)
  std::vector<int64_t> axes_dims{32, 48, 48};    // RoPE dims of (caption index, row, column)
  std::vector<int64_t> axes_lens{1536, 512, 512};  // diffusers' RoPE table lengths
  double rope_theta = 256.0;
  double t_scale = 1000.0;
  int64_t timestep_hidden_dim = 1024;  // t_embedder.mlp width
  int64_t pad_tokens_multiple = 32;    // caption and image sequences are padded to multiples

  int64_t head_dim() const { return dim / n_heads; }
  // Width of the timestep embedding that drives the adaLN modulations: min(dim, 256).
  int64_t adaln_dim() const { return dim < 256 ? dim : 256; }

  // Throws Error(kCorruptFile) naming the first inconsistency (heads not dividing dim,
  // axes_dims not summing to the head dimension, odd RoPE axes, ...).
  void validate() const;

  // diffusers ZImageTransformer2DModel config.json. Throws Error(kUnsupported) for the Omni
  // variant (siglip_feat_dim) and for several or temporal patch sizes, Error(kCorruptFile)
  // for an invalid one. diffusers has no grouped-query attention: n_kv_heads = n_heads.
  static ZImageConfig from_diffusers_json(const nlohmann::json& config);
  nlohmann::json to_diffusers_json() const;

  // The architecture of a state dict in the ComfyUI naming (prefix already stripped): widths
  // from the embedders, layer counts, heads from the q_norm width (128 without qk norm, as
  // ComfyUI assumes), the RoPE axes split as Z-Image's 32/48/48 of 128. Throws
  // Error(kCorruptFile) when a tensor it needs is missing or inconsistent.
  static ZImageConfig infer_from_keys(const ShapeIndex& shapes);
};

// A tiny Z-Image transformer for tests and the tiny pipeline: 16 latent channels, patch 2,
// dim 32, 2 heads of 16 (RoPE axes 4/6/6), 2 layers, 1 refiner layer each, text width
// `cap_feat_dim` (what the tiny text encoder outputs).
ZImageConfig tiny_zimage_config(int64_t cap_feat_dim = 32);

}  // namespace df::engine::zimage
