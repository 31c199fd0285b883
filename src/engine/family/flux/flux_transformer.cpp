// The FLUX.1 transformer (dev and schnell) as ComfyUI's Flux model runs it.
#include "engine/family/flux/flux_transformer.h"

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/nn_ops.h"

namespace df::engine::flux {
namespace {

constexpr int64_t kPatch = 2;
constexpr double kNormEps = 1e-6;
constexpr int64_t kTimeFeatures = 256;
// ComfyUI's Flux scales the [0, 1] timestep and the guidance by this before the sinusoids.
constexpr double kTimeFactor = 1000.0;

void require_input(bool condition, const std::string& message) {
  if (!condition) throw Error(ErrorCode::kInvalidArgument, "FLUX transformer: " + message);
}

// LayerNorm without affine parameters (BFL's elementwise_affine=False norms).
at::Tensor plain_layer_norm(const at::Tensor& x) {
  return at::layer_norm(x, {x.size(-1)}, {}, {}, kNormEps);
}

// (1 + scale)·LayerNorm(x) + shift, with shift and scale [B, 1, C].
at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
  return at::addcmul(shift, plain_layer_norm(x), scale + 1);
}

// BFL's MLPEmbedder: in_layer -> SiLU -> out_layer.
at::Tensor mlp_embedder(const Weights& w, const at::Tensor& x) {
  return nn::linear(w.sub("out_layer"), nn::silu_in_place(nn::linear(w.sub("in_layer"), x)));
}

// The sinusoidal features ComfyUI's Flux embeds a timestep or guidance value [B] with.
at::Tensor time_features(const at::Tensor& t, at::ScalarType dtype) {
  return nn::timestep_embedding(t.to(at::kFloat) * kTimeFactor, kTimeFeatures,
                                /*flip_sin_to_cos=*/true, /*freq_shift=*/0.0)
      .to(dtype);
}

// A modulation linear layer's output on SiLU(vec), [B, 1, n·C] split into n chunks.
std::vector<at::Tensor> modulation(const Weights& w, const at::Tensor& silu_vec, int64_t n) {
  return nn::linear(w, silu_vec).unsqueeze(1).chunk(n, -1);
}

// BFL's MLP: Linear "0" -> tanh-approximated GELU -> Linear "2".
at::Tensor gelu_mlp(const Weights& w, const at::Tensor& x) {
  return nn::linear(w.sub("2"), at::gelu(nn::linear(w.sub("0"), x), "tanh"));
}

// Queries, keys and values [B, L, heads, head_dim] of a fused projection [B, L, 3·C], queries
// and keys RMS-normalized by the QKNorm `norm`.
struct HeadsQkv {
  at::Tensor q, k, v;
};

HeadsQkv split_qkv(const Weights& norm, const at::Tensor& qkv, int64_t heads) {
  const auto parts = qkv.unflatten(-1, {3, heads, -1}).unbind(2);
  return {nn::rms_norm(norm.sub("query_norm"), parts[0], kNormEps, "scale"),
          nn::rms_norm(norm.sub("key_norm"), parts[1], kNormEps, "scale"), parts[2]};
}

// Rotary attention over the whole sequence -> [B, L, C].
at::Tensor rope_attention(const HeadsQkv& qkv, const at::Tensor& rope, int64_t heads) {
  return nn::attention(nn::apply_rope(qkv.q, rope).flatten(2),
                       nn::apply_rope(qkv.k, rope).flatten(2), qkv.v.flatten(2), heads,
                       /*causal=*/false);
}

// 2x2 patches of x [B, C, H, W] (H, W even) -> [B, H/2·W/2, C·4], channels (c, ph, pw).
at::Tensor patchify(const at::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2) / kPatch, w = x.size(3) / kPatch;
  return x.view({b, c, h, kPatch, w, kPatch})
      .permute({0, 2, 4, 1, 3, 5})
      .reshape({b, h * w, c * 4});
}

at::Tensor unpatchify(const at::Tensor& tokens, int64_t rows, int64_t cols) {
  const int64_t b = tokens.size(0), c = tokens.size(2) / (kPatch * kPatch);
  return tokens.view({b, rows, cols, c, kPatch, kPatch})
      .permute({0, 3, 1, 4, 2, 5})
      .reshape({b, c, rows * kPatch, cols * kPatch});
}

// ComfyUI's position ids: text tokens (0, 0, 0), then image patches (0, row, column) -> [B, L, 3].
at::Tensor position_ids(int64_t batch, int64_t text_tokens, int64_t rows, int64_t cols,
                        at::Device device) {
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  const at::Tensor grid_rows = at::arange(rows, options).view({rows, 1}).expand({rows, cols});
  const at::Tensor grid_cols = at::arange(cols, options).view({1, cols}).expand({rows, cols});
  const at::Tensor image = at::stack({at::zeros({rows, cols}, options), grid_rows, grid_cols}, -1)
                               .view({1, rows * cols, 3});
  const at::Tensor text = at::zeros({1, text_tokens, 3}, options);
  return at::cat({text, image}, 1).expand({batch, -1, -1});
}

}  // namespace

FluxTransformer::FluxTransformer(FluxConfig config, Weights weights)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      dtype_(at::kFloat),
      device_(at::kCPU) {
  if (config_.in_channels != config_.out_channels) {
    throw Error(ErrorCode::kUnsupported,
                "FLUX transformers that read extra image channels (in_channels " +
                    std::to_string(config_.in_channels) + ", out_channels " +
                    std::to_string(config_.out_channels) + ", as FLUX.1 Fill and Depth) are not "
                    "supported");
  }
  for (const TensorShape& tensor : flux_transformer_layout(config_)) {
    nn::require_shape(weights_, tensor.name, tensor.shape);
  }
  const at::Tensor& img_in = weights_.get("img_in.bias");  // never fp8 storage
  dtype_ = img_in.scalar_type();
  device_ = img_in.device();
}

void FluxTransformer::check_inputs(const at::Tensor& x, const at::Tensor& timestep,
                                   const NetworkInputs& inputs) const {
  require_input(x.defined() && x.dim() == 4 && x.size(1) == config_.latent_channels(),
                "latents must be [B, " + std::to_string(config_.latent_channels()) + ", H, W]");
  const int64_t batch = x.size(0);
  require_input(timestep.defined() && timestep.dim() == 1 && timestep.size(0) == batch,
                "timestep must be [B]");
  const at::Tensor& context = inputs.context;
  require_input(context.defined() && context.dim() == 3 && context.size(0) == batch &&
                    context.size(2) == config_.context_in_dim,
                "context must be [B, L, " + std::to_string(config_.context_in_dim) + "]");
  require_input(!inputs.pooled.defined() ||
                    (inputs.pooled.dim() == 2 && inputs.pooled.size(0) == batch &&
                     inputs.pooled.size(1) >= config_.vec_in_dim),
                "pooled must be [B, >= " + std::to_string(config_.vec_in_dim) + "]");
  require_input(!inputs.guidance.defined() ||
                    (inputs.guidance.dim() == 1 && inputs.guidance.size(0) == batch),
                "guidance must be [B]");
}

at::Tensor FluxTransformer::conditioning(const at::Tensor& timestep, const NetworkInputs& inputs,
                                         int64_t batch) const {
  at::Tensor vec = mlp_embedder(weights_.sub("time_in"), time_features(timestep, dtype_));
  if (config_.guidance_embed && inputs.guidance.defined()) {
    vec = vec + mlp_embedder(weights_.sub("guidance_in"),
                             time_features(inputs.guidance.to(device_), dtype_));
  }
  const at::Tensor pooled =
      inputs.pooled.defined()
          ? inputs.pooled.to(device_, dtype_).narrow(1, 0, config_.vec_in_dim)
          : at::zeros({batch, config_.vec_in_dim},
                      at::TensorOptions().dtype(dtype_).device(device_));
  vec = vec + mlp_embedder(weights_.sub("vector_in"), pooled);
  return at::silu(vec);
}

void FluxTransformer::double_block(const Weights& w, at::Tensor& img, at::Tensor& txt,
                                   const at::Tensor& silu_vec, const at::Tensor& rope) const {
  const auto img_mod = modulation(w.sub("img_mod.lin"), silu_vec, 6);
  const auto txt_mod = modulation(w.sub("txt_mod.lin"), silu_vec, 6);
  const int64_t heads = config_.num_heads;
  const HeadsQkv img_qkv = split_qkv(
      w.sub("img_attn.norm"),
      nn::linear(w.sub("img_attn.qkv"), modulated_norm(img, img_mod[0], img_mod[1])), heads);
  const HeadsQkv txt_qkv = split_qkv(
      w.sub("txt_attn.norm"),
      nn::linear(w.sub("txt_attn.qkv"), modulated_norm(txt, txt_mod[0], txt_mod[1])), heads);
  const HeadsQkv joint{at::cat({txt_qkv.q, img_qkv.q}, 1), at::cat({txt_qkv.k, img_qkv.k}, 1),
                       at::cat({txt_qkv.v, img_qkv.v}, 1)};
  const at::Tensor attn = rope_attention(joint, rope, heads);
  const int64_t text_tokens = txt.size(1);
  const at::Tensor txt_attn = attn.narrow(1, 0, text_tokens);
  const at::Tensor img_attn = attn.narrow(1, text_tokens, img.size(1));

  img = img + img_mod[2] * nn::linear(w.sub("img_attn.proj"), img_attn);
  img = img + img_mod[5] * gelu_mlp(w.sub("img_mlp"), modulated_norm(img, img_mod[3], img_mod[4]));
  txt = txt + txt_mod[2] * nn::linear(w.sub("txt_attn.proj"), txt_attn);
  txt = txt + txt_mod[5] * gelu_mlp(w.sub("txt_mlp"), modulated_norm(txt, txt_mod[3], txt_mod[4]));
}

at::Tensor FluxTransformer::single_block(const Weights& w, const at::Tensor& x,
                                         const at::Tensor& silu_vec, const at::Tensor& rope) const {
  const auto mod = modulation(w.sub("modulation.lin"), silu_vec, 3);
  const at::Tensor fused = nn::linear(w.sub("linear1"), modulated_norm(x, mod[0], mod[1]));
  const auto qkv_and_mlp =
      fused.split_with_sizes({3 * config_.hidden_size, config_.mlp_hidden()}, -1);
  const at::Tensor attn =
      rope_attention(split_qkv(w.sub("norm"), qkv_and_mlp[0], config_.num_heads), rope,
                     config_.num_heads);
  const at::Tensor out =
      nn::linear(w.sub("linear2"), at::cat({attn, at::gelu(qkv_and_mlp[1], "tanh")}, -1));
  return x + mod[2] * out;
}

at::Tensor FluxTransformer::final_layer(const at::Tensor& img, const at::Tensor& silu_vec) const {
  const auto shift_scale = modulation(weights_.sub("final_layer.adaLN_modulation.1"), silu_vec, 2);
  return nn::linear(weights_.sub("final_layer.linear"),
                    modulated_norm(img, shift_scale[0], shift_scale[1]));
}

at::Tensor FluxTransformer::forward(const at::Tensor& x, const at::Tensor& timestep,
                                    const NetworkInputs& inputs) const {
  check_inputs(x, timestep, inputs);
  at::NoGradGuard no_grad;
  const int64_t batch = x.size(0), height = x.size(2), width = x.size(3);
  const at::Tensor padded = nn::pad_to_patch_size(x.to(device_, dtype_), kPatch);
  const int64_t rows = padded.size(2) / kPatch, cols = padded.size(3) / kPatch;

  const at::Tensor silu_vec = conditioning(timestep.to(device_), inputs, batch);
  at::Tensor img = nn::linear(weights_.sub("img_in"), patchify(padded));
  at::Tensor txt = nn::linear(weights_.sub("txt_in"), inputs.context.to(device_, dtype_));
  const int64_t text_tokens = txt.size(1);
  const at::Tensor rope = nn::rope_frequencies(
      position_ids(batch, text_tokens, rows, cols, device_), config_.axes_dim, config_.theta);

  for (int64_t i = 0; i < config_.depth; ++i) {
    double_block(weights_.sub("double_blocks." + std::to_string(i)), img, txt, silu_vec, rope);
  }
  at::Tensor joint = at::cat({txt, img}, 1);
  for (int64_t i = 0; i < config_.depth_single_blocks; ++i) {
    joint = single_block(weights_.sub("single_blocks." + std::to_string(i)), joint, silu_vec, rope);
  }
  img = final_layer(joint.narrow(1, text_tokens, rows * cols), silu_vec);
  return unpatchify(img, rows, cols)
      .narrow(2, 0, height)
      .narrow(3, 0, width)
      .to(x.device(), at::kFloat)
      .contiguous();
}

std::shared_ptr<const DiffusionNetwork> FluxTransformer::with_weights(Weights weights) const {
  return std::make_shared<const FluxTransformer>(config_, std::move(weights));
}

}  // namespace df::engine::flux
