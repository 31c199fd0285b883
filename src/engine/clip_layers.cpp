// The pre-LayerNorm transformer layer shared by the CLIP text and vision encoders.
#include "engine/clip_layers.h"

#include "engine/nn_ops.h"

namespace df::engine {
namespace {

at::Tensor activation(const std::string& name, const at::Tensor& x) {
  return name == "quick_gelu" ? nn::quick_gelu(x) : at::gelu(x);
}

}  // namespace

bool is_clip_activation(const std::string& activation) {
  return activation == "quick_gelu" || activation == "gelu";
}

at::Tensor clip_encoder_layer(const Weights& w, const at::Tensor& x,
                              const ClipLayerOptions& options) {
  const double eps = options.layer_norm_eps;
  const Weights attn = w.sub("self_attn");
  const at::Tensor h = nn::layer_norm(w.sub("layer_norm1"), x, eps);
  const at::Tensor attended =
      nn::attention(nn::linear(attn.sub("q_proj"), h), nn::linear(attn.sub("k_proj"), h),
                    nn::linear(attn.sub("v_proj"), h), options.heads, options.causal);
  const at::Tensor y = x + nn::linear(attn.sub("out_proj"), attended);
  const at::Tensor normed = nn::layer_norm(w.sub("layer_norm2"), y, eps);
  return y + nn::linear(w.sub("mlp.fc2"),
                        activation(options.activation, nn::linear(w.sub("mlp.fc1"), normed)));
}

}  // namespace df::engine
