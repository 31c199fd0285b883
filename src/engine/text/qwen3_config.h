// Qwen3 text-encoder configuration (transformers' Qwen3Config fields) and its weight layout; torch-free.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/weight_layout.h"

namespace df::engine {

// The architecture of a transformers Qwen3Model. Defaults are Qwen3-4B's, the text encoder of
// Z-Image (ComfyUI's text_encoders/qwen_3_4b.safetensors, diffusers' text_encoder/ folder).
struct Qwen3Config {
  int hidden_size = 2560;
  int intermediate_size = 9728;
  int num_hidden_layers = 36;
  int num_attention_heads = 32;
  int num_key_value_heads = 8;
  int head_dim = 128;
  double rms_norm_eps = 1e-6;
  double rope_theta = 1000000.0;
  int vocab_size = 151936;
  int max_position_embeddings = 40960;

  // Reads a transformers config.json. rope_theta comes from "rope_parameters" (transformers 5)
  // or the top-level "rope_theta" (older files), 1e6 when neither has it; head_dim defaults to
  // 128 and num_key_value_heads to num_attention_heads, as transformers does. Throws
  // Error(kCorruptFile) for a non-object or badly typed field, Error(kUnsupported) for RoPE
  // scaling other than "default", and validate()'s errors.
  static Qwen3Config from_json(const nlohmann::json& json);
  // A config.json transformers reads back as the same Qwen3Config (model_type "qwen3").
  nlohmann::json to_json() const;
  // Derives the architecture from the tensor shapes of a weights file (names as in qwen3_layout,
  // optionally an extra "lm_head.weight"); rms_norm_eps, rope_theta and max_position_embeddings
  // keep their Qwen3-4B defaults. Throws Error(kUnsupported) naming the tensor when one it needs
  // is missing or shaped wrongly.
  static Qwen3Config infer_from_keys(const std::map<std::string, std::vector<int64_t>>& shapes);
  // Throws Error(kInvalidArgument) for non-positive sizes, an odd head_dim, or query heads that
  // are no multiple of the key/value heads.
  void validate() const;

  bool operator==(const Qwen3Config&) const = default;
};

// Every tensor of a transformers Qwen3Model state dict ("model." names), in module order:
// embed_tokens, per layer input_layernorm, self_attn.{q,k,v,o}_proj (no biases), q_norm, k_norm,
// post_attention_layernorm, mlp.{gate,up,down}_proj, then the final norm.
std::vector<TensorShape> qwen3_layout(const Qwen3Config& config);

// A tiny configuration like transformers' Qwen3 tests: hidden 32, 3 layers, 4 heads of 8, 2
// key/value heads, intermediate 64, for a vocabulary of `vocab_size` ids.
Qwen3Config tiny_qwen3_config(int vocab_size);

}  // namespace df::engine
