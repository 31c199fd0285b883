// T5 v1.1 encoder forward pass: relative position bias, unscaled attention, gated-GELU feed-forward.
#include "engine/text/t5_encoder.h"

#include <cmath>
#include <limits>
#include <optional>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/nn_ops.h"
#include "engine/safetensors.h"
#include "engine/tensor_file.h"

namespace df::engine {
namespace {

constexpr double kFloat16Max = 65504.0;

// transformers' bidirectional relative position buckets: half the buckets for keys after the
// query; within each half, exact distances below a quarter of the buckets, then logarithmic up to
// max_distance. relative [L, L] int64 (key minus query) -> bucket ids.
at::Tensor relative_position_buckets(const at::Tensor& relative, int64_t buckets,
                                     int64_t max_distance) {
  const int64_t half = buckets / 2;
  const int64_t max_exact = half / 2;
  const at::Tensor distance = relative.abs();
  const at::Tensor log_ratio =
      at::log(distance.to(at::kFloat) / static_cast<double>(max_exact)) /
      std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact));
  const at::Tensor large =
      at::clamp_max((log_ratio * static_cast<double>(half - max_exact)).to(at::kLong) + max_exact,
                    half - 1);
  return (relative > 0).to(at::kLong) * half + at::where(distance < max_exact, distance, large);
}

// A projection in its weight's dtype: x is cast to it, the result back to float32.
at::Tensor project(const Weights& w, const at::Tensor& x) {
  const at::ScalarType dtype = w.get("weight").scalar_type();
  return nn::linear(w, x.to(dtype)).to(at::kFloat);
}

}  // namespace

T5Encoder::T5Encoder(T5Config config, Weights weights)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      embedding_(weights_.has("shared.weight") ? weights_.sub("shared")
                                               : weights_.sub("encoder.embed_tokens")) {
  check_weights();
}

void T5Encoder::check_weights() const {
  for (const TensorShape& tensor : t5_encoder_layout(config_)) {
    const std::string name = tensor.name == "shared.weight" ? embedding_.prefix() + ".weight" : tensor.name;
    nn::require_shape(weights_, name, tensor.shape);
  }
}

void T5Encoder::check_inputs(const at::Tensor& ids, const at::Tensor& attention_mask) const {
  if (ids.dim() != 2 || ids.size(1) == 0 ||
      !at::isIntegralType(ids.scalar_type(), /*includeBool=*/false)) {
    throw Error(ErrorCode::kInvalidArgument, "T5 input ids must be a non-empty [batch, length] integer tensor");
  }
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 ||
                          ids.max().item<int64_t>() >= config_.vocab_size)) {
    throw Error(ErrorCode::kInvalidArgument, "T5 input ids must lie in [0, " +
                                                 std::to_string(config_.vocab_size) + ")");
  }
  if (attention_mask.defined() && attention_mask.sizes() != ids.sizes()) {
    throw Error(ErrorCode::kInvalidArgument, "T5 attention mask must have the shape of the ids");
  }
}

at::Tensor T5Encoder::attention_bias(int64_t length, const at::Tensor& attention_mask) const {
  const at::Tensor& table =
      weights_.get("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  const at::Tensor positions = at::arange(length, at::TensorOptions(table.device()).dtype(at::kLong));
  const at::Tensor buckets =
      relative_position_buckets(positions.unsqueeze(0) - positions.unsqueeze(1),
                                config_.relative_attention_num_buckets,
                                config_.relative_attention_max_distance);
  at::Tensor bias = at::embedding(table, buckets).to(at::kFloat).permute({2, 0, 1}).unsqueeze(0);
  if (!attention_mask.defined()) return bias;
  // transformers adds the most negative float to masked keys (a fully masked row stays finite).
  const at::Tensor masked = attention_mask.to(table.device()).eq(0).to(at::kFloat) *
                            std::numeric_limits<float>::lowest();
  return bias + masked.unsqueeze(1).unsqueeze(1);
}

at::Tensor T5Encoder::self_attention(const Weights& w, const at::Tensor& x,
                                     const at::Tensor& bias) const {
  const auto split_heads = [this](const at::Tensor& t) {
    return t.unflatten(-1, {config_.num_heads, config_.d_kv}).transpose(1, 2);
  };
  const at::Tensor q = split_heads(project(w.sub("q"), x));
  const at::Tensor k = split_heads(project(w.sub("k"), x));
  const at::Tensor v = split_heads(project(w.sub("v"), x));
  // T5 does not scale its attention logits (the 1/sqrt(d_kv) is folded into its weights).
  const at::Tensor out =
      at::scaled_dot_product_attention(q, k, v, bias.expand({q.size(0), -1, -1, -1}), 0.0,
                                       /*is_causal=*/false, /*scale=*/1.0);
  return project(w.sub("o"), out.transpose(1, 2).flatten(2));
}

at::Tensor T5Encoder::feed_forward(const Weights& w, const at::Tensor& x) const {
  at::Tensor hidden = config_.gated()
                          ? at::gelu(project(w.sub("wi_0"), x), "tanh") * project(w.sub("wi_1"), x)
                          : at::relu(project(w.sub("wi"), x));
  if (w.get("wo.weight").scalar_type() == at::kHalf) {
    hidden = hidden.clamp(-kFloat16Max, kFloat16Max);
  }
  return project(w.sub("wo"), hidden);
}

at::Tensor T5Encoder::forward(const at::Tensor& ids, const at::Tensor& attention_mask) const {
  check_inputs(ids, attention_mask);
  at::NoGradGuard no_grad;
  const at::Tensor& table = embedding_.get("weight");
  at::Tensor x = at::embedding(table, ids.to(table.device(), at::kLong)).to(at::kFloat);
  const at::Tensor bias = attention_bias(ids.size(1), attention_mask);
  const double eps = config_.layer_norm_epsilon;
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    const Weights block = weights_.sub("encoder.block." + std::to_string(i));
    const Weights attention = block.sub("layer.0");
    x = x + self_attention(attention.sub("SelfAttention"),
                           nn::rms_norm(attention.sub("layer_norm"), x, eps).to(at::kFloat), bias);
    const Weights ff = block.sub("layer.1");
    x = x + feed_forward(ff.sub("DenseReluDense"),
                         nn::rms_norm(ff.sub("layer_norm"), x, eps).to(at::kFloat));
  }
  return nn::rms_norm(weights_.sub("encoder.final_layer_norm"), x, eps).to(at::kFloat);
}

namespace {

// T5 encoder weights are "shared.weight" and "encoder.*.weight" (load_tensors_as skips scaled fp8
// files' scales and applies them).
bool is_t5_encoder_weight(const std::string& name) {
  return (name == "shared.weight" || name.starts_with("encoder.")) && name.ends_with(".weight");
}

}  // namespace

T5Encoder load_t5_encoder(const std::string& path, at::ScalarType dtype) {
  return load_t5_encoder(std::vector<std::string>{path}, dtype);
}

T5Encoder load_t5_encoder(const std::vector<std::string>& paths, at::ScalarType dtype) {
  const auto keep = [](const std::string& name) -> std::optional<std::string> {
    if (is_t5_encoder_weight(name)) return name;
    return std::nullopt;
  };
  std::vector<TensorShape> shapes;
  TensorMap tensors;
  for (const std::string& path : paths) {
    const TensorFile file = TensorFile::open(path);
    for (const TensorInfo& tensor : file.tensors()) {
      if (is_t5_encoder_weight(tensor.name)) shapes.push_back({tensor.name, tensor.shape});
    }
    tensors.merge(load_tensors_as(file, dtype, keep));
  }
  return T5Encoder(T5Config::infer_from_keys(shapes), Weights(std::move(tensors)));
}

at::Tensor t5_attention_mask(const at::Tensor& ids) {
  // Positions up to the first EOS: no EOS strictly before them.
  const at::Tensor eos = ids.eq(kT5EosId).to(at::kLong);
  return (eos.cumsum(1) - eos).eq(0).to(at::kLong);
}

namespace {

at::Tensor ids_tensor(const std::vector<int32_t>& ids) {
  return at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
}

at::Tensor encode_ids(const T5Encoder& encoder, const at::Tensor& ids, bool use_attention_mask) {
  return encoder.forward(ids, use_attention_mask ? t5_attention_mask(ids) : at::Tensor());
}

}  // namespace

at::Tensor encode_weighted(const T5Encoder& encoder, const T5WeightedTokens& tokens,
                           bool use_attention_mask) {
  if (tokens.ids.empty() || tokens.ids.size() != tokens.weights.size()) {
    throw Error(ErrorCode::kInvalidArgument, "T5 weighted tokens need one weight per id");
  }
  at::Tensor z = encode_ids(encoder, ids_tensor(tokens.ids), use_attention_mask);
  if (!tokens.has_non_unit_weights()) return z;
  std::vector<int32_t> empty(tokens.ids.size(), kT5PadId);
  empty[0] = kT5EosId;
  const at::Tensor z_empty = encode_ids(encoder, ids_tensor(empty), use_attention_mask);
  const at::Tensor weights =
      at::tensor(tokens.weights, at::kFloat).to(z.device()).view({1, -1, 1});
  // Positions of weight 1 keep z exactly, as ComfyUI only rewrites the others.
  return at::where(weights != 1.0f, (z - z_empty) * weights + z_empty, z);
}

}  // namespace df::engine
