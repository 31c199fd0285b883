// SD3 / SD3.5 MMDiT forward pass: patch embedding with a centre-cropped position grid, joint
// attention blocks with adaLN-zero modulation, final adaLN layer, unpatchify.
#include "engine/family/sd3/sd3_transformer.h"

#include <string>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/nn_ops.h"

namespace df::engine::sd3 {
namespace {

constexpr double kNormEps = 1e-6;
constexpr int64_t kTimestepFeatures = 256;

// LayerNorm without affine parameters over the last dimension.
at::Tensor plain_layer_norm(const at::Tensor& x) {
  return at::layer_norm(x, {x.size(-1)}, {}, {}, kNormEps);
}

// x·(1 + scale) + shift, with per-sample [B, C] modulations broadcast over the tokens.
at::Tensor modulate(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
  return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

// The `count` modulation vectors of an adaLN layer: Linear(SiLU(c)) split along the features.
std::vector<at::Tensor> modulations(const Weights& w, const at::Tensor& c, int64_t count) {
  return nn::linear(w.sub("adaLN_modulation.1"), at::silu(c)).chunk(count, 1);
}

// mlp.0 -> SiLU -> mlp.2 (the timestep and pooled-vector embedders).
at::Tensor silu_mlp(const Weights& w, const at::Tensor& x) {
  return nn::linear(w.sub("mlp.2"), nn::silu_in_place(nn::linear(w.sub("mlp.0"), x)));
}

// fc1 -> GELU (tanh approximation) -> fc2.
at::Tensor gelu_mlp(const Weights& w, const at::Tensor& x) {
  return nn::linear(w.sub("fc2"), at::gelu(nn::linear(w.sub("fc1"), x), "tanh"));
}

std::string describe(const at::Tensor& t) { return c10::str(t.sizes()); }

}  // namespace

Sd3Transformer::Sd3Transformer(Sd3Config config, Weights weights)
    : config_(std::move(config)), weights_(std::move(weights)), dtype_(at::kFloat),
      device_(at::kCPU) {
  config_.validate();
  for (const TensorShape& tensor : sd3_transformer_layout(config_)) {
    nn::require_shape(weights_, tensor.name, tensor.shape);
  }
  const at::Tensor& patch = weights_.get("x_embedder.proj.weight");
  dtype_ = patch.scalar_type();
  device_ = patch.device();
}

void Sd3Transformer::check_inputs(const at::Tensor& x, const at::Tensor& timestep,
                                  const NetworkInputs& inputs) const {
  const auto fail = [](const std::string& message) {
    throw Error(ErrorCode::kInvalidArgument, "SD3 MMDiT: " + message);
  };
  if (x.dim() != 4 || x.size(1) != config_.in_channels) {
    fail("latents must be [B, " + std::to_string(config_.in_channels) + ", H, W], got " +
         describe(x));
  }
  const int64_t batch = x.size(0);
  if (timestep.dim() != 1 || (timestep.size(0) != batch && timestep.size(0) != 1)) {
    fail("timestep must be [" + std::to_string(batch) + "], got " + describe(timestep));
  }
  const at::Tensor& context = inputs.context;
  if (!context.defined() || context.dim() != 3 || context.size(0) != batch ||
      context.size(2) != config_.joint_attention_dim) {
    fail("context must be [" + std::to_string(batch) + ", L, " +
         std::to_string(config_.joint_attention_dim) + "], got " +
         (context.defined() ? describe(context) : std::string("none")));
  }
  const at::Tensor& pooled = inputs.pooled;
  if (pooled.defined() && (pooled.dim() != 2 || pooled.size(0) != batch ||
                           pooled.size(1) != config_.pooled_projection_dim)) {
    fail("pooled must be [" + std::to_string(batch) + ", " +
         std::to_string(config_.pooled_projection_dim) + "], got " + describe(pooled));
  }
}

at::Tensor Sd3Transformer::cropped_position_embedding(int64_t grid_height,
                                                      int64_t grid_width) const {
  const int64_t grid = config_.pos_embed_max_size;
  if (grid_height > grid || grid_width > grid) {
    throw Error(ErrorCode::kInvalidArgument,
                "SD3 MMDiT: a " + std::to_string(grid_height) + "x" + std::to_string(grid_width) +
                    " patch grid exceeds the " + std::to_string(grid) + "x" +
                    std::to_string(grid) + " position embedding");
  }
  const int64_t top = (grid - grid_height) / 2;
  const int64_t left = (grid - grid_width) / 2;
  return weights_.get("pos_embed")
      .reshape({1, grid, grid, -1})
      .narrow(1, top, grid_height)
      .narrow(2, left, grid_width)
      .reshape({1, grid_height * grid_width, -1});
}

at::Tensor Sd3Transformer::embed_patches(const at::Tensor& x) const {
  const at::Tensor patches =
      nn::conv2d(weights_.sub("x_embedder.proj"), x, config_.patch_size, /*padding=*/0);
  const at::Tensor tokens = patches.flatten(2).transpose(1, 2);
  return tokens + cropped_position_embedding(patches.size(2), patches.size(3));
}

at::Tensor Sd3Transformer::conditioning(const at::Tensor& timestep, const at::Tensor& pooled,
                                        int64_t batch) const {
  const at::Tensor features =
      nn::timestep_embedding(timestep.to(device_).expand({batch}), kTimestepFeatures,
                             /*flip_sin_to_cos=*/true, /*freq_shift=*/0.0)
          .to(dtype_);
  at::Tensor c = silu_mlp(weights_.sub("t_embedder"), features);
  if (pooled.defined()) c = c + silu_mlp(weights_.sub("y_embedder"), pooled.to(device_, dtype_));
  return c;
}

Sd3Transformer::Qkv Sd3Transformer::project_qkv(const Weights& attention,
                                                const at::Tensor& x) const {
  const at::Tensor qkv = nn::linear(attention.sub("qkv"), x)
                             .unflatten(-1, {3, config_.num_heads, config_.head_dim});
  at::Tensor q = qkv.select(2, 0);
  at::Tensor k = qkv.select(2, 1);
  if (config_.qk_norm == QkNorm::kRms) {
    q = nn::rms_norm(attention.sub("ln_q"), q, kNormEps);
    k = nn::rms_norm(attention.sub("ln_k"), k, kNormEps);
  }
  return {q.flatten(2), k.flatten(2), qkv.select(2, 2).flatten(2)};
}

void Sd3Transformer::joint_block(int64_t index, at::Tensor& context, at::Tensor& x,
                                 const at::Tensor& c) const {
  const Weights block = weights_.sub("joint_blocks." + std::to_string(index));
  const Weights image = block.sub("x_block");
  const Weights text = block.sub("context_block");
  const bool pre_only = config_.context_pre_only(index);
  const bool dual = config_.has_dual_attention(index);

  // Image modulations: shift/scale/gate of attention and MLP (then of attn2 in dual blocks).
  const auto xm = modulations(image, c, dual ? 9 : 6);
  // Context modulations: the same six, or only shift/scale for the last block.
  const auto cm = modulations(text, c, pre_only ? 2 : 6);

  const at::Tensor x_norm = plain_layer_norm(x);
  const Qkv xq = project_qkv(image.sub("attn"), modulate(x_norm, xm[0], xm[1]));
  const Qkv cq = project_qkv(text.sub("attn"), modulate(plain_layer_norm(context), cm[0], cm[1]));
  const int64_t context_length = context.size(1);
  const at::Tensor joint =
      nn::attention(at::cat({cq.q, xq.q}, 1), at::cat({cq.k, xq.k}, 1), at::cat({cq.v, xq.v}, 1),
                    config_.num_heads, /*causal=*/false);

  const at::Tensor x_attention = joint.narrow(1, context_length, x.size(1));
  x = x + xm[2].unsqueeze(1) * nn::linear(image.sub("attn.proj"), x_attention);
  if (dual) {
    const Qkv own = project_qkv(image.sub("attn2"), modulate(x_norm, xm[6], xm[7]));
    const at::Tensor attended = nn::attention(own.q, own.k, own.v, config_.num_heads, false);
    x = x + xm[8].unsqueeze(1) * nn::linear(image.sub("attn2.proj"), attended);
  }
  x = x + xm[5].unsqueeze(1) *
              gelu_mlp(image.sub("mlp"), modulate(plain_layer_norm(x), xm[3], xm[4]));
  if (pre_only) return;

  const at::Tensor c_attention = joint.narrow(1, 0, context_length);
  context = context + cm[2].unsqueeze(1) * nn::linear(text.sub("attn.proj"), c_attention);
  const at::Tensor c_mlp_in = modulate(plain_layer_norm(context), cm[3], cm[4]);
  context = context + cm[5].unsqueeze(1) * gelu_mlp(text.sub("mlp"), c_mlp_in);
}

at::Tensor Sd3Transformer::final_layer(const at::Tensor& x, const at::Tensor& c) const {
  const Weights w = weights_.sub("final_layer");
  const auto shift_scale = modulations(w, c, 2);
  return nn::linear(w.sub("linear"), modulate(plain_layer_norm(x), shift_scale[0], shift_scale[1]));
}

at::Tensor Sd3Transformer::unpatchify(const at::Tensor& tokens, int64_t grid_height,
                                      int64_t grid_width) const {
  const int64_t p = config_.patch_size;
  const int64_t channels = config_.out_channels;
  return tokens.reshape({tokens.size(0), grid_height, grid_width, p, p, channels})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({tokens.size(0), channels, grid_height * p, grid_width * p});
}

at::Tensor Sd3Transformer::forward(const at::Tensor& x, const at::Tensor& timestep,
                                   const NetworkInputs& inputs) const {
  check_inputs(x, timestep, inputs);
  at::NoGradGuard no_grad;
  const int64_t height = x.size(2);
  const int64_t width = x.size(3);
  const int64_t p = config_.patch_size;
  const at::Tensor padded = nn::pad_to_patch_size(x.to(device_, dtype_), p);
  at::Tensor tokens = embed_patches(padded);
  const at::Tensor c = conditioning(timestep, inputs.pooled, x.size(0));
  at::Tensor context =
      nn::linear(weights_.sub("context_embedder"), inputs.context.to(device_, dtype_));
  for (int64_t block = 0; block < config_.depth; ++block) joint_block(block, context, tokens, c);
  const at::Tensor out = unpatchify(final_layer(tokens, c), padded.size(2) / p, padded.size(3) / p);
  return out.narrow(2, 0, height).narrow(3, 0, width).to(x.device(), at::kFloat);
}

std::shared_ptr<const DiffusionNetwork> Sd3Transformer::with_weights(Weights weights) const {
  return std::make_shared<const Sd3Transformer>(config_, std::move(weights));
}

}  // namespace df::engine::sd3
