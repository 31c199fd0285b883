// FLUX.1 transformer hyperparameters: from and to diffusers' config.json, and from weight shapes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::engine::flux {

// Tensor shapes of a state dict by name.
using KeyShapes = std::map<std::string, std::vector<int64_t>>;

// The shape of a FLUX.1 transformer (BFL's FluxParams; defaults are flux1-dev's). Channel counts
// are of packed latents: 2x2 patches of `in_channels / 4` latent channels.
struct FluxConfig {
  int64_t hidden_size = 3072;
  int64_t num_heads = 24;
  int64_t depth = 19;               // double-stream blocks
  int64_t depth_single_blocks = 38;  // single-stream blocks
  int64_t in_channels = 64;
  int64_t out_channels = 64;
  int64_t context_in_dim = 4096;  // T5 width
  int64_t vec_in_dim = 768;       // CLIP-L pooled width
  bool guidance_embed = true;     // dev: true, schnell: false
  std::vector<int64_t> axes_dim = {16, 56, 56};  // RoPE channels of the (index, row, column) axes
  double theta = 10000.0;
  double mlp_ratio = 4.0;

  int64_t head_dim() const { return hidden_size / num_heads; }
  int64_t mlp_hidden() const { return static_cast<int64_t>(hidden_size * mlp_ratio); }
  // Channels of the unpacked latents the network reads and writes.
  int64_t latent_channels() const { return out_channels / 4; }

  // Throws Error(kInvalidArgument) unless the sizes fit together: heads divide the hidden size,
  // the RoPE axes (each even) sum to the head dim, packed channels are multiples of 4.
  void validate() const;

  // FluxTransformer2DModel's config.json. Throws Error(kCorruptFile) for a missing or mistyped
  // field, Error(kUnsupported) for a patch_size other than 1, then validates.
  static FluxConfig from_diffusers_json(const nlohmann::json& json);
  nlohmann::json to_diffusers_json() const;

  // The config of a state dict in BFL naming (no prefix): widths from img_in, txt_in, vector_in and
  // final_layer, depths from the block counts, dev vs schnell from guidance_in's presence, the head
  // dim from the q-norm scale's length, mlp_ratio from the first MLP. The RoPE split is not stored:
  // FLUX.1's proportions are used (an eighth of the head dim, at least 4, for the index axis, the
  // rest split evenly), which gives [16, 56, 56] for the real models. Throws Error(kCorruptFile)
  // when a needed tensor is missing or has the wrong rank.
  static FluxConfig infer_from_keys(const KeyShapes& shapes);
};

// A tiny config for tests that still runs in the real pipeline: 16-channel latents in 2x2
// patches, 2 heads of 16 channels (RoPE axes [4, 6, 6]), 1 double and 1 single block, 32-wide
// text states and pooled vector. `guidance` makes it dev-like.
FluxConfig tiny_flux_config(bool guidance);

}  // namespace df::engine::flux
