// CLIP text transformer: embeddings, pre-LN causal encoder layers, final LayerNorm, EOS pooling.
#include "engine/clip_text.h"

#include <string>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/clip_layers.h"
#include "engine/nn_ops.h"

namespace df::engine {

ClipTextModel::ClipTextModel(ClipTextConfig config, Weights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  const int64_t hidden = config_.hidden_size;
  if (config_.num_attention_heads <= 0 || hidden % config_.num_attention_heads != 0) {
    throw Error(ErrorCode::kCorruptFile,
                "text encoder config: hidden_size " + std::to_string(hidden) +
                    " does not split into " + std::to_string(config_.num_attention_heads) +
                    " heads");
  }
  if (!is_clip_activation(config_.hidden_act)) {
    throw Error(ErrorCode::kUnsupported,
                "text encoder activation '" + config_.hidden_act + "' is not supported");
  }
  nn::require_shape(weights_, "embeddings.token_embedding.weight", {config_.vocab_size, hidden});
  nn::require_shape(weights_, "embeddings.position_embedding.weight",
                    {config_.max_position_embeddings, hidden});
  const std::string last_layer = "encoder.layers." + std::to_string(config_.num_hidden_layers - 1);
  nn::require_shape(weights_, last_layer + ".mlp.fc1.weight", {config_.intermediate_size, hidden});
  if (config_.with_projection) {
    nn::require_shape(weights_, "text_projection.weight", {config_.projection_dim, hidden});
  }
}

void ClipTextModel::check_input_ids(const at::Tensor& input_ids, int eos_token_id) const {
  if (input_ids.dim() != 2 || !at::isIntegralType(input_ids.scalar_type(), /*includeBool=*/false)) {
    throw Error(ErrorCode::kInvalidArgument,
                "text encoder input must be a [batch, tokens] tensor of integer token ids");
  }
  const int64_t length = input_ids.size(1);
  if (input_ids.size(0) == 0 || length == 0 || length > config_.max_position_embeddings) {
    throw Error(ErrorCode::kInvalidArgument,
                "text encoder input has " + std::to_string(length) + " tokens; it takes 1 to " +
                    std::to_string(config_.max_position_embeddings) + " per row");
  }
  const auto [min_id, max_id] = at::aminmax(input_ids);
  if (min_id.item<int64_t>() < 0 || max_id.item<int64_t>() >= config_.vocab_size) {
    throw Error(ErrorCode::kInvalidArgument, "token ids must lie in [0, " +
                                                 std::to_string(config_.vocab_size) + ")");
  }
  if (!input_ids.eq(eos_token_id).any(1).all().item<bool>()) {
    throw Error(ErrorCode::kInvalidArgument,
                "every row of token ids must contain the end-of-text token " +
                    std::to_string(eos_token_id));
  }
}

void ClipTextModel::check_replaced(const ReplacedTokenEmbeddings& replaced,
                                   const at::Tensor& input_ids) const {
  if (!replaced.positions.defined()) return;
  const auto& p = replaced.positions;
  const auto& v = replaced.vectors;
  if (p.scalar_type() != at::kBool || p.sizes() != input_ids.sizes() || !v.defined() ||
      v.dim() != 3 || v.size(0) != p.size(0) || v.size(1) != p.size(1) ||
      v.size(2) != config_.hidden_size) {
    throw Error(ErrorCode::kInvalidArgument,
                "replaced token embeddings must be [batch, tokens] bool positions and [batch, "
                "tokens, " + std::to_string(config_.hidden_size) + "] vectors");
  }
}

at::Tensor ClipTextModel::input_embeddings(const at::Tensor& ids,
                                           const ReplacedTokenEmbeddings& replaced) const {
  const at::Tensor& token_embedding = weights_.get("embeddings.token_embedding.weight");
  at::Tensor x = at::embedding(token_embedding, ids);
  if (replaced.positions.defined()) {
    x = at::where(replaced.positions.to(x.device()).unsqueeze(-1),
                  replaced.vectors.to(x.device(), x.scalar_type()), x);
  }
  return x + weights_.get("embeddings.position_embedding.weight").slice(0, 0, ids.size(1));
}

ClipTextOutput ClipTextModel::forward(const at::Tensor& input_ids, int eos_token_id,
                                      const ReplacedTokenEmbeddings& replaced) const {
  check_input_ids(input_ids, eos_token_id);
  check_replaced(replaced, input_ids);
  at::NoGradGuard no_grad;
  const at::Tensor& token_embedding = weights_.get("embeddings.token_embedding.weight");
  const at::Tensor ids = input_ids.to(token_embedding.device(), at::kLong);

  ClipTextOutput out;
  out.hidden_states.reserve(config_.num_hidden_layers + 1);
  const ClipLayerOptions layer_options{config_.num_attention_heads, config_.layer_norm_eps,
                                       config_.hidden_act, /*causal=*/true};
  at::Tensor x = input_embeddings(ids, replaced);
  out.hidden_states.push_back(x);
  for (int i = 0; i < config_.num_hidden_layers; ++i) {
    x = clip_encoder_layer(weights_.sub("encoder.layers." + std::to_string(i)), x, layer_options);
    out.hidden_states.push_back(x);
  }
  out.last_hidden_state = final_layer_norm(x);

  // First end-of-text position per row (argmax returns the first maximum).
  const at::Tensor eos_position = ids.eq(eos_token_id).to(at::kInt).argmax(1);
  const int64_t hidden = out.last_hidden_state.size(2);
  out.pooled =
      out.last_hidden_state.gather(1, eos_position.view({-1, 1, 1}).expand({-1, 1, hidden}))
          .squeeze(1);
  if (config_.with_projection) out.pooled = nn::linear(weights_.sub("text_projection"), out.pooled);
  return out;
}

at::Tensor ClipTextModel::final_layer_norm(const at::Tensor& hidden) const {
  return nn::layer_norm(weights_.sub("final_layer_norm"), hidden, config_.layer_norm_eps);
}

}  // namespace df::engine
