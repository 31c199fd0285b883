// Neural-network building blocks shared by the CLIP text encoder, the UNet and the VAE.
#include "engine/nn_ops.h"

#include <cmath>
#include <optional>
#include <vector>

#include "core/error.h"
#include "engine/fp8_weights.h"

namespace df::engine::nn {
namespace {

std::optional<at::Tensor> optional_tensor(const Weights& w, const std::string& name) {
  if (!w.has(name)) return std::nullopt;
  return w.get(name);
}

}  // namespace

void require_shape(const Weights& w, const std::string& name, at::IntArrayRef expected) {
  const at::Tensor& t = w.get(name);
  if (t.sizes() == expected) return;
  const std::string full = w.prefix().empty() ? name : w.prefix() + "." + name;
  throw Error(ErrorCode::kCorruptFile, "model tensor '" + full + "' has shape " +
                                           c10::str(t.sizes()) + " but its config expects " +
                                           c10::str(expected));
}

at::Tensor linear(const Weights& w, const at::Tensor& x) {
  return at::linear(x, weight_for_compute(w, "weight", x.scalar_type()), optional_tensor(w, "bias"));
}

at::Tensor embedding(const Weights& w, const at::Tensor& ids, at::ScalarType dtype) {
  return at::embedding(weight_for_compute(w, "weight", dtype), ids);
}

at::Tensor conv2d(const Weights& w, const at::Tensor& x, int64_t stride, int64_t padding) {
  return at::conv2d(x, weight_for_compute(w, "weight", x.scalar_type()), optional_tensor(w, "bias"),
                    stride, padding);
}

at::Tensor group_norm(const Weights& w, const at::Tensor& x, int64_t groups, double eps) {
  return at::group_norm(x, groups, w.get("weight"), w.get("bias"), eps);
}

at::Tensor layer_norm(const Weights& w, const at::Tensor& x, double eps) {
  return at::layer_norm(x, {x.size(-1)}, w.get("weight"), w.get("bias"), eps);
}

at::Tensor rms_norm(const Weights& w, const at::Tensor& x, double eps,
                    const std::string& scale_name) {
  const at::Tensor mean_square = x.to(at::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  return (x * at::rsqrt(mean_square + eps)).to(x.scalar_type()) * w.get(scale_name);
}

at::Tensor rope_frequencies(const at::Tensor& positions, at::IntArrayRef axes_dims, double theta) {
  const at::Tensor pos = positions.to(at::kDouble);
  std::vector<at::Tensor> angles;
  for (size_t axis = 0; axis < axes_dims.size(); ++axis) {
    const int64_t dim = axes_dims[axis];
    const at::Tensor omega =
        at::pow(theta, -at::arange(0, dim, 2, pos.options()) / static_cast<double>(dim));
    angles.push_back(pos.select(-1, static_cast<int64_t>(axis)).unsqueeze(-1) * omega);
  }
  const at::Tensor all = at::cat(angles, -1);
  return at::stack({at::cos(all), at::sin(all)}, -1).to(at::kFloat);
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& frequencies) {
  const at::Tensor pairs = x.to(at::kFloat).unflatten(-1, {-1, 2});
  const at::Tensor cos = frequencies.select(-1, 0).unsqueeze(2);
  const at::Tensor sin = frequencies.select(-1, 1).unsqueeze(2);
  const at::Tensor even = pairs.select(-1, 0);
  const at::Tensor odd = pairs.select(-1, 1);
  return at::stack({even * cos - odd * sin, even * sin + odd * cos}, -1)
      .flatten(-2)
      .to(x.scalar_type());
}

at::Tensor apply_rope_half_split(const at::Tensor& x, const at::Tensor& frequencies) {
  const auto halves = x.to(at::kFloat).chunk(2, -1);
  const at::Tensor cos = frequencies.select(-1, 0).unsqueeze(2);
  const at::Tensor sin = frequencies.select(-1, 1).unsqueeze(2);
  return at::cat({halves[0] * cos - halves[1] * sin, halves[1] * cos + halves[0] * sin}, -1)
      .to(x.scalar_type());
}

at::Tensor pad_to_patch_size(const at::Tensor& x, int64_t patch) {
  const int64_t pad_h = (patch - x.size(-2) % patch) % patch;
  const int64_t pad_w = (patch - x.size(-1) % patch) % patch;
  if (pad_h == 0 && pad_w == 0) return x;
  return at::pad(x, {0, pad_w, 0, pad_h}, "circular");
}

at::Tensor silu_in_place(at::Tensor x) {
  at::silu_(x);
  return x;
}

at::Tensor quick_gelu(const at::Tensor& x) { return x * at::sigmoid(x * 1.702); }

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     bool causal) {
  // [B, L, C] -> [B, heads, L, C/heads] as strided views; SDPA accepts them without copies.
  const auto split_heads = [heads](const at::Tensor& t) {
    return t.unflatten(-1, {heads, -1}).transpose(1, 2);
  };
  const at::Tensor out = at::scaled_dot_product_attention(split_heads(q), split_heads(k),
                                                          split_heads(v), {}, 0.0, causal);
  return out.transpose(1, 2).flatten(2);
}

at::Tensor attention_block(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                           int64_t heads) {
  const at::Tensor q = linear(w.sub("to_q"), x);
  const at::Tensor k = linear(w.sub("to_k"), context);
  const at::Tensor v = linear(w.sub("to_v"), context);
  return linear(w.sub("to_out.0"), attention(q, k, v, heads, /*causal=*/false));
}

at::Tensor geglu_feed_forward(const Weights& w, const at::Tensor& x) {
  const auto value_and_gate = linear(w.sub("net.0.proj"), x).chunk(2, -1);
  return linear(w.sub("net.2"), value_and_gate[0] * at::gelu(value_and_gate[1]));
}

at::Tensor resnet_block(const Weights& w, const at::Tensor& x, const at::Tensor& temb,
                        int64_t groups, double eps) {
  at::Tensor h =
      conv2d(w.sub("conv1"), silu_in_place(group_norm(w.sub("norm1"), x, groups, eps)), 1, 1);
  if (temb.defined()) {
    h.add_(linear(w.sub("time_emb_proj"), at::silu(temb)).unsqueeze(-1).unsqueeze(-1));
  }
  h = conv2d(w.sub("conv2"), silu_in_place(group_norm(w.sub("norm2"), h, groups, eps)), 1, 1);
  if (w.has("conv_shortcut.weight")) return h.add_(conv2d(w.sub("conv_shortcut"), x, 1, 0));
  return h.add_(x);
}

at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                              double freq_shift) {
  const int64_t half = dim / 2;
  // Same operation order as diffusers' get_timestep_embedding, so float32 results agree bitwise.
  const at::Tensor exponent =
      at::arange(half, timesteps.options().dtype(at::kFloat)) * -std::log(10000.0) /
      (static_cast<double>(half) - freq_shift);
  const at::Tensor args = timesteps.to(at::kFloat).unsqueeze(1) * at::exp(exponent).unsqueeze(0);
  at::Tensor emb = flip_sin_to_cos ? at::cat({at::cos(args), at::sin(args)}, -1)
                                   : at::cat({at::sin(args), at::cos(args)}, -1);
  if (dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1}, 0);
  return emb;
}

at::Tensor timestep_mlp(const Weights& w, const at::Tensor& x) {
  return linear(w.sub("linear_2"), silu_in_place(linear(w.sub("linear_1"), x)));
}

at::Tensor upsample(const Weights& w, const at::Tensor& x, int64_t height, int64_t width) {
  return conv2d(w.sub("conv"), at::upsample_nearest2d(x, {height, width}), 1, 1);
}

at::Tensor downsample(const Weights& w, const at::Tensor& x, DownsamplePadding padding) {
  if (padding == DownsamplePadding::kBottomRight) {
    return conv2d(w.sub("conv"), at::constant_pad_nd(x, {0, 1, 0, 1}, 0), 2, 0);
  }
  return conv2d(w.sub("conv"), x, 2, 1);
}

}  // namespace df::engine::nn
