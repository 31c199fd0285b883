// T5 v1.1 text encoder (transformers T5EncoderModel) in libtorch, and ComfyUI's token weighting for it.
#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/text/t5_config.h"
#include "engine/text/t5_tokenizer.h"
#include "engine/weights.h"

namespace df::engine {

// Weights use the transformers names (t5_encoder_layout): "shared.weight" (or
// "encoder.embed_tokens.weight" alone), "encoder.block.N.layer.0.SelfAttention.{q,k,v,o}.weight",
// "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight" (the bias of every
// layer), "encoder.block.N.layer.{0,1}.layer_norm.weight",
// "encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1,wo}.weight" (gated-gelu) or {wi,wo} (relu),
// "encoder.final_layer_norm.weight". Every shape is checked at construction.
//
// Precision: the residual stream, the RMS norms, the attention logits/softmax and the gated
// feed-forward product are always float32 (ComfyUI runs T5 with float32 activations); each
// projection runs in the dtype of its weight, its input cast to that dtype and its output back
// to float32. T5-XXL's feed-forward activations exceed the float16 range, so with float16 weights
// the input of "wo" is clamped to ±65504 first (transformers clamps its float16 hidden states the
// same way). Runs on the device of the weights.
class T5Encoder {
 public:
  T5Encoder(T5Config config, Weights weights);

  // ids [B, L] integer token ids (< vocab_size); attention_mask optional [B, L] (1 = attend,
  // 0 = padding ignored as a key), undefined for none. -> last hidden state [B, L, d_model]
  // float32 (after final_layer_norm). Throws Error(kInvalidArgument) for bad shapes or ids.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& attention_mask = {}) const;

  const T5Config& config() const { return config_; }
  const Weights& weights() const { return weights_; }

 private:
  void check_weights() const;
  void check_inputs(const at::Tensor& ids, const at::Tensor& attention_mask) const;
  // [1, heads, L, L] relative position bias plus the mask's large negative values at padded keys.
  at::Tensor attention_bias(int64_t length, const at::Tensor& attention_mask) const;
  at::Tensor self_attention(const Weights& w, const at::Tensor& x, const at::Tensor& bias) const;
  at::Tensor feed_forward(const Weights& w, const at::Tensor& x) const;

  T5Config config_;
  Weights weights_;
  Weights embedding_;  // view holding "weight": shared or encoder.embed_tokens
};

// Loads the T5 encoder of a weights file (ComfyUI's text_encoders/t5xxl_fp16.safetensors, a
// diffusers text_encoder_2/3 model.safetensors, a transformers T5EncoderModel file) with its
// floating tensors as `dtype`; the config is inferred from the tensors (T5Config::infer_from_keys)
// and tensors that are not T5 encoder weights are skipped; ComfyUI's "scaled_fp8" files load
// dequantized. Throws TensorFile::open's errors and the shape checks'.
T5Encoder load_t5_encoder(const std::string& path, at::ScalarType dtype);
// The same for an encoder sharded over `paths` (a diffusers text_encoder_2/3's
// model-0000N-of-0000M.safetensors), read as one file.
T5Encoder load_t5_encoder(const std::vector<std::string>& paths, at::ScalarType dtype);

// The special ids ComfyUI's T5 encoder uses (its special_tokens {"end": 1, "pad": 0}).
inline constexpr int kT5EosId = 1;
inline constexpr int kT5PadId = 0;

// ComfyUI's attention mask for T5 inputs (SDClipModel with attention masks enabled): per row, 1 up
// to and including the first EOS, 0 after it. ids [B, L] -> [B, L] int64.
at::Tensor t5_attention_mask(const at::Tensor& ids);

// Encodes weighted tokens as ComfyUI's ClipTokenWeightEncoder does for T5: the ids are encoded;
// if any weight differs from 1, an "empty" input of the same length (EOS, then pad ids) is encoded
// too and each position j with weight w != 1 becomes (z[j] - empty[j])·w + empty[j]. With
// `use_attention_mask` both inputs get t5_attention_mask (ComfyUI's t5_attention_mask option;
// off for FLUX.1 and SD3 by default). -> [1, L, d_model] float32.
at::Tensor encode_weighted(const T5Encoder& encoder, const T5WeightedTokens& tokens,
                           bool use_attention_mask = false);

}  // namespace df::engine
