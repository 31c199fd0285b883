// Neural-network building blocks shared by the CLIP text encoder, the UNet and the VAE.
//
// Every block reads its tensors from a Weights view named like the diffusers/transformers module
// (e.g. linear(w.sub("to_q"), x) reads "to_q.weight" and, when present, "to_q.bias") and computes
// in the dtype and on the device of its inputs, which the calling module has already matched to
// its weights. No block records autograd history; callers run under at::NoGradGuard.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "engine/weights.h"

namespace df::engine::nn {

// Throws Error(kCorruptFile) unless the tensor `name` of the view has exactly `expected` shape, so
// a config that does not fit its weights fails when the model is built, with both shapes named.
void require_shape(const Weights& w, const std::string& name, at::IntArrayRef expected);

// Weights stored in fp8 (fp8_weights.h) are upcast to the input's dtype (times their
// "weight_scale") at use, by linear, embedding and conv2d alike.

// y = x·Wᵀ (+ b when the view has a bias). x: [..., in] -> [..., out].
at::Tensor linear(const Weights& w, const at::Tensor& x);

// Rows of the table "weight" [vocab, dim] at integer `ids`, as `dtype`'s rows when the table is
// stored in fp8 (else in the table's dtype). ids [...] -> [..., dim].
at::Tensor embedding(const Weights& w, const at::Tensor& ids, at::ScalarType dtype);

// 2-D convolution with "weight" [out, in, k, k] and optional "bias".
at::Tensor conv2d(const Weights& w, const at::Tensor& x, int64_t stride, int64_t padding);

// GroupNorm with affine "weight"/"bias" over x [B, C, ...].
at::Tensor group_norm(const Weights& w, const at::Tensor& x, int64_t groups, double eps);

// LayerNorm over the last dimension with affine "weight"/"bias".
at::Tensor layer_norm(const Weights& w, const at::Tensor& x, double eps);

// RMSNorm over the last dimension (diffusers/ComfyUI RMSNorm): x·rsqrt(mean(x²) + eps), the mean
// taken in float32, back in x's dtype, times "weight" (or the scale tensor `scale_name`, e.g. BFL's
// "scale").
at::Tensor rms_norm(const Weights& w, const at::Tensor& x, double eps,
                    const std::string& scale_name = "weight");

// Rotary position embedding over several position axes (FLUX's and Lumina/Z-Image's EmbedND):
// positions [B, L, A] -> [B, L, sum(axes_dims)/2, 2] float32 (cos, sin) pairs; axis a gives
// axes_dims[a]/2 angles position·theta^(-2i/axes_dims[a]), computed in float64.
at::Tensor rope_frequencies(const at::Tensor& positions, at::IntArrayRef axes_dims, double theta);

// Rotates each consecutive pair (x[2i], x[2i+1]) of x [B, L, heads, head_dim] by the angles of
// rope_frequencies [B, L, head_dim/2, 2] (complex multiplication, in float32); x's dtype out.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& frequencies);

// The same rotation with the half-split pairing of Llama-family models (transformers'
// rotate_half): x[i] pairs with x[i + head_dim/2].
at::Tensor apply_rope_half_split(const at::Tensor& x, const at::Tensor& frequencies);

// Pads x [B, C, H, W] at the bottom and right to multiples of `patch` by wrapping around
// (circular, as ComfyUI's DiT models do); x itself when it already fits.
at::Tensor pad_to_patch_size(const at::Tensor& x, int64_t patch);

// SiLU applied in place to a temporary the caller hands over; returns it.
at::Tensor silu_in_place(at::Tensor x);

// x·sigmoid(1.702·x) (OpenAI CLIP's activation).
at::Tensor quick_gelu(const at::Tensor& x);

// Multi-head scaled dot-product attention on unprojected heads: q [B, Lq, C], k/v [B, Lk, C]
// split into `heads` heads of C/heads; causal masks position i from keys j > i. -> [B, Lq, C].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     bool causal);

// diffusers Attention with projections to_q, to_k, to_v and to_out.0 (biases where present):
// queries from x [B, L, C], keys and values from context [B, Lc, Cc] (pass x for self-attention).
at::Tensor attention_block(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                           int64_t heads);

// diffusers FeedForward with GEGLU: net.0.proj (C -> 2·I, split into value and gate),
// value·GELU(gate), then net.2 (I -> C).
at::Tensor geglu_feed_forward(const Weights& w, const at::Tensor& x);

// diffusers ResnetBlock2D: norm1, conv1, optional time_emb_proj of SiLU(temb) added per channel,
// norm2, conv2, plus x (through conv_shortcut when the block has one). temb [B, T] or an undefined
// tensor for blocks without time conditioning (the VAE).
at::Tensor resnet_block(const Weights& w, const at::Tensor& x, const at::Tensor& temb,
                        int64_t groups, double eps);

// Sinusoidal timestep features, always float32: [B] -> [B, dim], frequencies
// exp(-ln(10000)·i / (dim/2 - freq_shift)), halves [sin, cos] or [cos, sin] when flip_sin_to_cos.
at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                              double freq_shift);

// diffusers TimestepEmbedding: linear_1 -> SiLU -> linear_2.
at::Tensor timestep_mlp(const Weights& w, const at::Tensor& x);

// diffusers Upsample2D ("conv" inside the view): nearest resize of x [B, C, h, w] to
// [height, width], then 3×3 convolution.
at::Tensor upsample(const Weights& w, const at::Tensor& x, int64_t height, int64_t width);

// How a Downsample2D pads before its stride-2 3×3 convolution.
enum class DownsamplePadding {
  kSymmetric,    // 1 pixel on every side (UNet)
  kBottomRight,  // 1 pixel of zeros right and bottom only, none in the conv (VAE encoder)
};

// diffusers Downsample2D ("conv" inside the view).
at::Tensor downsample(const Weights& w, const at::Tensor& x, DownsamplePadding padding);

}  // namespace df::engine::nn
