// Qwen3Encoder: weight checks, masks, RoPE angles and the decoder layers.
#include "engine/text/qwen3_encoder.h"

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/nn_ops.h"
#include "engine/safetensors.h"
#include "engine/tensor_file.h"

namespace df::engine {

namespace {

void check_inputs(const at::Tensor& ids, const at::Tensor& mask, int vocab_size) {
  if (!ids.defined() || ids.dim() != 2 || ids.size(1) == 0 || at::isFloatingType(ids.scalar_type())) {
    throw Error(ErrorCode::kInvalidArgument, "Qwen3 input ids must be a non-empty [batch, length] integer tensor");
  }
  if (mask.defined() && mask.sizes() != ids.sizes()) {
    throw Error(ErrorCode::kInvalidArgument, "Qwen3 attention mask must have the shape of the ids");
  }
  if (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= vocab_size) {
    throw Error(ErrorCode::kInvalidArgument,
                "Qwen3 input ids must lie in 0.." + std::to_string(vocab_size - 1));
  }
}

// [B, 1, L, L] boolean: query i sees key j <= i that is a real token. A query that would see
// nothing (a left-padded position) sees itself, so no row is empty.
at::Tensor attention_mask_of(const at::Tensor& mask, int64_t batch, int64_t length,
                             at::Device device) {
  const auto options = at::TensorOptions().dtype(at::kBool).device(device);
  at::Tensor allowed = at::ones({length, length}, options).tril().expand({batch, length, length});
  if (mask.defined()) allowed = allowed.logical_and(mask.to(device).ne(0).unsqueeze(1));
  const at::Tensor empty_rows = allowed.any(-1, /*keepdim=*/true).logical_not();
  allowed = allowed.logical_or(empty_rows.logical_and(at::eye(length, options)));
  return allowed.unsqueeze(1);
}

// Resolves a transformers hidden_states index against `layers` decoder layers.
int resolve_layer(int layer, int layers) {
  const int resolved = layer < 0 ? layer + layers + 1 : layer;
  if (resolved < 0 || resolved > layers) {
    throw Error(ErrorCode::kInvalidArgument,
                "Qwen3 hidden-state index " + std::to_string(layer) + " is outside -" +
                    std::to_string(layers + 1) + ".." + std::to_string(layers));
  }
  return resolved;
}

// Splits [B, L, heads·head_dim] into [B, L, heads, head_dim] and RMS-normalises each head.
at::Tensor normed_heads(const Weights& norm, const at::Tensor& x, int64_t head_dim, double eps) {
  return nn::rms_norm(norm, x.unflatten(-1, {-1, head_dim}), eps);
}

// The model's tensors under transformers' "model." names: kept as they are in a causal-LM file
// (ComfyUI's qwen_3_4b.safetensors), prefixed in a bare Qwen3Model file ("embed_tokens.weight").
// Other tensors (lm_head.weight) are dropped.
std::optional<std::string> qwen3_name(const std::string& name) {
  if (name.starts_with("model.")) return name;
  if (name.starts_with("embed_tokens.") || name.starts_with("layers.") || name.starts_with("norm.")) {
    return "model." + name;
  }
  return std::nullopt;
}

}  // namespace

Qwen3Encoder::Qwen3Encoder(Qwen3Config config, Weights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  for (const TensorShape& tensor : qwen3_layout(config_)) {
    nn::require_shape(weights_, tensor.name, tensor.shape);
  }
}

Qwen3Encoder Qwen3Encoder::load(const std::string& path, at::ScalarType dtype) {
  return load(std::vector<std::string>{path}, dtype);
}

Qwen3Encoder Qwen3Encoder::load(const std::vector<std::string>& paths, at::ScalarType dtype) {
  std::map<std::string, std::vector<int64_t>> shapes;
  TensorMap tensors;
  for (const std::string& path : paths) {
    const TensorFile file = TensorFile::open(path);
    for (const TensorInfo& info : file.tensors()) {
      if (auto name = qwen3_name(info.name)) shapes.emplace(*name, info.shape);
    }
    tensors.merge(load_tensors_as(file, dtype, qwen3_name));
  }
  Qwen3Config config = Qwen3Config::infer_from_keys(shapes);
  return Qwen3Encoder(config, Weights(std::move(tensors)));
}

at::Tensor Qwen3Encoder::self_attention(const Weights& w, const at::Tensor& x,
                                        const at::Tensor& rope, const at::Tensor& mask) const {
  const int64_t head_dim = config_.head_dim;
  const double eps = config_.rms_norm_eps;
  auto heads_first = [](const at::Tensor& t) { return t.transpose(1, 2); };  // [B, H, L, D]
  const at::Tensor q = nn::apply_rope_half_split(
      normed_heads(w.sub("q_norm"), nn::linear(w.sub("q_proj"), x), head_dim, eps), rope);
  const at::Tensor k = nn::apply_rope_half_split(
      normed_heads(w.sub("k_norm"), nn::linear(w.sub("k_proj"), x), head_dim, eps), rope);
  const at::Tensor v = nn::linear(w.sub("v_proj"), x).unflatten(-1, {-1, head_dim});
  const int64_t groups = config_.num_attention_heads / config_.num_key_value_heads;
  const at::Tensor out = at::scaled_dot_product_attention(
      heads_first(q), heads_first(k).repeat_interleave(groups, 1),
      heads_first(v).repeat_interleave(groups, 1), mask);
  return nn::linear(w.sub("o_proj"), heads_first(out).flatten(2));
}

at::Tensor Qwen3Encoder::decoder_layer(const Weights& w, const at::Tensor& x,
                                       const at::Tensor& rope, const at::Tensor& mask) const {
  const double eps = config_.rms_norm_eps;
  const at::Tensor h =
      x + self_attention(w.sub("self_attn"), nn::rms_norm(w.sub("input_layernorm"), x, eps), rope, mask);
  const at::Tensor normed = nn::rms_norm(w.sub("post_attention_layernorm"), h, eps);
  const Weights mlp = w.sub("mlp");
  const at::Tensor gated =
      nn::silu_in_place(nn::linear(mlp.sub("gate_proj"), normed)) * nn::linear(mlp.sub("up_proj"), normed);
  return h + nn::linear(mlp.sub("down_proj"), gated);
}

at::Tensor Qwen3Encoder::hidden_states(const at::Tensor& ids, const at::Tensor& attention_mask,
                                       int layer) const {
  at::NoGradGuard no_grad;
  check_inputs(ids, attention_mask, config_.vocab_size);
  const int target = resolve_layer(layer, config_.num_hidden_layers);
  const at::Tensor& embedding = weights_.get("model.embed_tokens.weight");
  const at::Tensor tokens = ids.to(embedding.device(), at::kLong);
  const at::ScalarType dtype = weights_.get("model.norm.weight").scalar_type();
  at::Tensor x = nn::embedding(weights_.sub("model.embed_tokens"), tokens, dtype);
  if (target == 0) return x;

  const int64_t batch = ids.size(0), length = ids.size(1);
  const at::Tensor positions =
      at::arange(length, at::TensorOptions().dtype(at::kLong).device(embedding.device()))
          .view({1, length, 1})
          .expand({batch, length, 1});
  const at::Tensor rope = nn::rope_frequencies(positions, {config_.head_dim}, config_.rope_theta);
  const at::Tensor mask = attention_mask_of(attention_mask, batch, length, embedding.device());
  const Weights layers = weights_.sub("model.layers");
  for (int i = 0; i < target; ++i) {
    x = decoder_layer(layers.sub(std::to_string(i)), x, rope, mask);
  }
  if (target == config_.num_hidden_layers) {
    x = nn::rms_norm(weights_.sub("model.norm"), x, config_.rms_norm_eps);
  }
  return x;
}

}  // namespace df::engine
