// T5 v1.1 encoder configuration (transformers T5Config fields), its tensor layout and a tiny test size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/weight_layout.h"

namespace df::engine {

// The encoder half of transformers' T5Config. Defaults are T5-XXL v1.1 (google/t5-v1_1-xxl, the
// text encoder of FLUX.1 and SD3): 24 layers, d_model 4096, 64 heads of 64, d_ff 10240, a vocabulary
// of 32128 embedding rows (the tokenizer uses the first 32100).
struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 4096;
  int64_t d_kv = 64;
  int64_t d_ff = 10240;
  int64_t num_heads = 64;
  int64_t num_layers = 24;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  // "gated-gelu" (T5 v1.1: wi_0, wi_1, wo with tanh-approximated GELU) or "relu" (original T5: wi, wo).
  std::string feed_forward_proj = "gated-gelu";

  bool gated() const { return feed_forward_proj.starts_with("gated-"); }
  int64_t inner_dim() const { return num_heads * d_kv; }

  // Reads a transformers config.json object (missing fields keep the defaults above; num_layers
  // is the encoder's). Throws Error(kCorruptFile) for fields of the wrong type or impossible
  // values, Error(kUnsupported) for a feed_forward_proj other than relu / gated-gelu.
  static T5Config from_json(const nlohmann::json& json);
  // A config.json that transformers' T5EncoderModel loads (model_type "t5").
  nlohmann::json to_json() const;
  // Infers the sizes from a weights file's tensor names and shapes (transformers names, with or
  // without "encoder.embed_tokens.weight"; other tensors such as fp8 scales are ignored).
  // relative_attention_max_distance and the epsilon cannot be seen in weights and keep their
  // defaults. Throws Error(kCorruptFile) when the T5 encoder tensors are missing or disagree.
  static T5Config infer_from_keys(const std::vector<TensorShape>& tensors);

  bool operator==(const T5Config&) const = default;
};

// Every tensor of a transformers T5EncoderModel state dict as save_pretrained writes it
// ("shared.weight", "encoder.block.N.layer.*", "encoder.final_layer_norm.weight"; the tied
// "encoder.embed_tokens.weight" is left out), in module order.
std::vector<TensorShape> t5_encoder_layout(const T5Config& config);

// A tiny T5 v1.1 encoder like transformers' own T5 tests: d_model 32, 4 heads of 8, d_ff 37,
// 2 layers, gated-gelu, 32 buckets over distance 128.
T5Config tiny_t5_config(int64_t vocab_size);

}  // namespace df::engine
