// Z-Image NextDiT forward pass: patchify, refine image and caption tokens apart, run the joint
// blocks over both, and read the image tokens back out.
#include "engine/family/zimage/zimage_transformer.h"

#include <algorithm>
#include <optional>
#include <vector>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/family/zimage/zimage_weights.h"
#include "engine/nn_ops.h"

namespace df::engine::zimage {
namespace {

constexpr int64_t kTimestepFeatures = 256;
// diffusers' q/k RMSNorm eps; ComfyUI's leaves it to torch, which takes the compute dtype's
// epsilon (1.2e-7 in float32, 7.8e-3 in bfloat16).
constexpr double kQkNormEps = 1e-5;
constexpr double kFinalNormEps = 1e-6;

int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// A token stream of the batch with its RoPE frequencies and which keys attention may use.
struct Tokens {
  at::Tensor states;    // [B, S, dim]
  at::Tensor rope;      // [B, S, head_dim / 2, 2]
  at::Tensor key_mask;  // [B, S] bool; undefined: every token
};

// One block's adaLN terms, each [B, 1, dim]; undefined in the unmodulated context refiner.
struct Modulation {
  at::Tensor attention_scale, attention_gate, ffn_scale, ffn_gate;
};

at::Tensor scaled(const at::Tensor& x, const at::Tensor& scale) {
  return scale.defined() ? x * (1 + scale) : x;
}

at::Tensor gated(const at::Tensor& x, const at::Tensor& gate) {
  return gate.defined() ? at::tanh(gate) * x : x;
}

Modulation modulation_of(const Weights& block, const at::Tensor& adaln) {
  if (!adaln.defined()) return {};
  const auto terms = nn::linear(block.sub("adaLN_modulation.0"), adaln).unsqueeze(1).chunk(4, -1);
  return {terms[0], terms[1], terms[2], terms[3]};
}

at::Tensor self_attention(const Weights& w, const ZImageConfig& c, const at::Tensor& x,
                          const Tokens& tokens) {
  const int64_t hd = c.head_dim();
  const auto qkv = nn::linear(w.sub("qkv"), x).split_with_sizes(
      {c.n_heads * hd, c.n_kv_heads * hd, c.n_kv_heads * hd}, -1);
  at::Tensor q = qkv[0].unflatten(-1, {c.n_heads, hd});
  at::Tensor k = qkv[1].unflatten(-1, {c.n_kv_heads, hd});
  at::Tensor v = qkv[2].unflatten(-1, {c.n_kv_heads, hd});
  if (c.qk_norm) {
    q = nn::rms_norm(w.sub("q_norm"), q, kQkNormEps);
    k = nn::rms_norm(w.sub("k_norm"), k, kQkNormEps);
  }
  q = nn::apply_rope(q, tokens.rope);
  k = nn::apply_rope(k, tokens.rope);
  const int64_t group = c.n_heads / c.n_kv_heads;
  if (group > 1) {
    k = k.repeat_interleave(group, 2);
    v = v.repeat_interleave(group, 2);
  }
  std::optional<at::Tensor> mask;
  if (tokens.key_mask.defined()) mask = tokens.key_mask.unsqueeze(1).unsqueeze(1);
  const at::Tensor out = at::scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                                          v.transpose(1, 2), mask);
  return nn::linear(w.sub("out"), out.transpose(1, 2).flatten(2));
}

// SwiGLU: w2(silu(w1 x) · w3 x).
at::Tensor feed_forward(const Weights& w, const at::Tensor& x) {
  return nn::linear(w.sub("w2"),
                    nn::silu_in_place(nn::linear(w.sub("w1"), x)) * nn::linear(w.sub("w3"), x));
}

// A JointTransformerBlock: RMS-normed, scaled attention and feed-forward, each output RMS-normed
// again and added through a tanh gate (no scale or gate without adaln).
at::Tensor block_forward(const Weights& w, const ZImageConfig& c, at::Tensor x,
                         const Tokens& tokens, const at::Tensor& adaln) {
  const Modulation m = modulation_of(w, adaln);
  const auto norm = [&](const char* name, const at::Tensor& t) {
    return nn::rms_norm(w.sub(name), t, c.norm_eps);
  };
  const at::Tensor attended = self_attention(
      w.sub("attention"), c, scaled(norm("attention_norm1", x), m.attention_scale), tokens);
  x = x + gated(norm("attention_norm2", attended), m.attention_gate);
  const at::Tensor fed =
      feed_forward(w.sub("feed_forward"), scaled(norm("ffn_norm1", x), m.ffn_scale));
  return x + gated(norm("ffn_norm2", fed), m.ffn_gate);
}

at::Tensor run_blocks(const Weights& w, const ZImageConfig& c, const std::string& stack,
                      int64_t count, Tokens tokens, const at::Tensor& adaln) {
  for (int64_t i = 0; i < count; ++i) {
    tokens.states = block_forward(w.sub(stack + "." + std::to_string(i)), c,
                                  std::move(tokens.states), tokens, adaln);
  }
  return tokens.states;
}

// [B, C, H, W] -> [B, (H/p)·(W/p), p·p·C], features ordered (row in patch, column, channel).
at::Tensor patchify(const at::Tensor& x, int64_t p) {
  const int64_t b = x.size(0), ch = x.size(1), h = x.size(2), w = x.size(3);
  return x.view({b, ch, h / p, p, w / p, p})
      .permute({0, 2, 4, 3, 5, 1})
      .reshape({b, (h / p) * (w / p), p * p * ch});
}

at::Tensor unpatchify(const at::Tensor& tokens, int64_t p, int64_t channels, int64_t h,
                      int64_t w) {
  const int64_t b = tokens.size(0);
  return tokens.view({b, h / p, w / p, p, p, channels})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({b, channels, h, w});
}

// `token` [1, dim] as `count` rows [count, dim].
at::Tensor repeated_token(const at::Tensor& token, int64_t count) {
  return token.expand({count, token.size(-1)});
}

// [B, S] true for the first `lengths[i]` tokens; undefined when every entry fills all S.
at::Tensor leading_mask(const std::vector<int64_t>& lengths, int64_t size,
                        const at::Device& device) {
  if (std::all_of(lengths.begin(), lengths.end(), [size](int64_t n) { return n == size; })) {
    return {};
  }
  const auto options = at::TensorOptions().dtype(at::kLong);
  return at::arange(size, options.device(device)).unsqueeze(0) <
         at::tensor(lengths, options).to(device).unsqueeze(1);
}

// The adaLN input: t_embedder of (1 - sigma) · t_scale, [B, adaln_dim] in the weights' dtype.
at::Tensor timestep_conditioning(const Weights& w, const ZImageConfig& c,
                                 const at::Tensor& sigma) {
  const at::Tensor features = nn::timestep_embedding((1.0 - sigma) * c.t_scale, kTimestepFeatures,
                                                     /*flip_sin_to_cos=*/true, 0.0);
  const Weights mlp = w.sub("t_embedder.mlp");
  const at::Tensor hidden = nn::silu_in_place(
      nn::linear(mlp.sub("0"), features.to(w.get("x_pad_token").scalar_type())));
  return nn::linear(mlp.sub("2"), hidden);
}

// Each entry's caption tokens (where the mask is true) embedded and padded with cap_pad_token to
// a multiple of pad_tokens_multiple, then to the longest entry: [B, S, dim]. Appends each
// entry's padded length to `padded_lengths`.
at::Tensor caption_states(const Weights& w, const ZImageConfig& c, const at::Tensor& context,
                          const at::Tensor& mask, std::vector<int64_t>& padded_lengths) {
  const at::Tensor embedded = nn::linear(
      w.sub("cap_embedder.1"), nn::rms_norm(w.sub("cap_embedder.0"), context, c.norm_eps));
  std::vector<at::Tensor> entries;
  for (int64_t i = 0; i < embedded.size(0); ++i) {
    entries.push_back(mask.defined() ? embedded[i].index({mask[i]}) : embedded[i]);
    if (entries.back().size(0) == 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "Z-Image: batch entry " + std::to_string(i) + " has no caption tokens");
    }
    padded_lengths.push_back(round_up(entries.back().size(0), c.pad_tokens_multiple));
  }
  const int64_t longest = *std::max_element(padded_lengths.begin(), padded_lengths.end());
  for (at::Tensor& entry : entries) {
    entry = at::cat({entry, repeated_token(w.get("cap_pad_token"), longest - entry.size(0))});
  }
  return at::stack(entries);
}

// Positions (caption index, row, column): caption token k at (k + 1, 0, 0).
at::Tensor caption_positions(int64_t batch, int64_t length, const at::TensorOptions& options) {
  const at::Tensor index = at::arange(1, length + 1, options).view({1, length, 1});
  return at::cat({index, at::zeros({1, length, 2}, options)}, -1).expand({batch, length, 3});
}

// Image token (row, column) of entry i at (padded caption length + 1, row, column); the padding
// tokens after the image at (0, 0, 0).
at::Tensor image_positions(const std::vector<int64_t>& padded_caption_lengths, int64_t rows,
                           int64_t columns, int64_t padded_length,
                           const at::TensorOptions& options) {
  const int64_t batch = static_cast<int64_t>(padded_caption_lengths.size());
  const int64_t count = rows * columns;
  const at::Tensor grid =
      at::stack(at::meshgrid({at::arange(rows, options), at::arange(columns, options)}, "ij"), -1)
          .view({1, count, 2});
  const at::Tensor start =
      at::tensor(padded_caption_lengths, options).view({batch, 1, 1}) + 1;
  const at::Tensor image =
      at::cat({start.expand({batch, count, 1}), grid.expand({batch, count, 2})}, -1);
  return at::constant_pad_nd(image, {0, 0, 0, padded_length - count}, 0);
}

// The caption stream before the context refiner; `padded_lengths` receives each entry's length.
Tokens embed_captions(const Weights& w, const ZImageConfig& c, const NetworkInputs& inputs,
                      std::vector<int64_t>& padded_lengths) {
  const at::Tensor& reference = w.get("cap_pad_token");
  const at::Tensor mask = inputs.context_mask.defined()
                              ? inputs.context_mask.to(reference.device()).to(at::kBool)
                              : at::Tensor();
  const at::Tensor states =
      caption_states(w, c, inputs.context.to(reference.options()), mask, padded_lengths);
  const int64_t batch = states.size(0), slots = states.size(1);
  const auto positions = caption_positions(batch, slots, reference.options().dtype(at::kFloat));
  return {states, nn::rope_frequencies(positions, c.axes_dims, c.rope_theta),
          leading_mask(padded_lengths, slots, reference.device())};
}

// The image stream before the noise refiner: patches of x (already a multiple of the patch
// size) embedded, then x_pad_token up to a multiple of pad_tokens_multiple.
Tokens embed_image(const Weights& w, const ZImageConfig& c, const at::Tensor& x,
                   const std::vector<int64_t>& padded_caption_lengths) {
  const int64_t p = c.patch_size, rows = x.size(2) / p, columns = x.size(3) / p;
  const int64_t count = rows * columns, slots = round_up(count, c.pad_tokens_multiple);
  const at::Tensor padding =
      repeated_token(w.get("x_pad_token"), slots - count).unsqueeze(0).expand({x.size(0), -1, -1});
  const at::Tensor states = at::cat({nn::linear(w.sub("x_embedder"), patchify(x, p)), padding}, 1);
  const auto positions = image_positions(padded_caption_lengths, rows, columns, slots,
                                         x.options().dtype(at::kFloat));
  return {states, nn::rope_frequencies(positions, c.axes_dims, c.rope_theta), {}};
}

// The joint stream [image, caption] of the refined streams. ComfyUI orders it [caption, image];
// attention only sees the RoPE positions, so the order does not change the result.
Tokens joint_tokens(const Tokens& image, const Tokens& caption) {
  Tokens joint{at::cat({image.states, caption.states}, 1), at::cat({image.rope, caption.rope}, 1),
               {}};
  if (caption.key_mask.defined()) {
    const at::Tensor image_keys =
        at::ones({image.states.size(0), image.states.size(1)}, caption.key_mask.options());
    joint.key_mask = at::cat({image_keys, caption.key_mask}, 1);
  }
  return joint;
}

// final_layer: parameter-free LayerNorm scaled by 1 + adaLN_modulation(SiLU(adaln)), then linear.
at::Tensor final_layer(const Weights& w, const ZImageConfig& c, const at::Tensor& states,
                       const at::Tensor& adaln) {
  const at::Tensor scale =
      nn::linear(w.sub("adaLN_modulation.1"), at::silu(adaln)).unsqueeze(1);
  const at::Tensor normed = at::layer_norm(states, {c.dim}, {}, {}, kFinalNormEps);
  return nn::linear(w.sub("linear"), normed * (1 + scale));
}

void check_inputs(const ZImageConfig& c, const at::Tensor& x, const at::Tensor& timestep,
                  const NetworkInputs& inputs) {
  const auto fail = [](const std::string& what) {
    throw Error(ErrorCode::kInvalidArgument, "Z-Image transformer: " + what);
  };
  if (x.dim() != 4 || x.size(1) != c.in_channels) {
    fail("latents must be [B, " + std::to_string(c.in_channels) + ", H, W], got " +
         c10::str(x.sizes()));
  }
  const int64_t batch = x.size(0);
  if (timestep.dim() != 1 || timestep.size(0) != batch) {
    fail("timestep must be [B] with B = " + std::to_string(batch));
  }
  const at::Tensor& context = inputs.context;
  if (!context.defined() || context.dim() != 3 || context.size(0) != batch ||
      context.size(2) != c.cap_feat_dim) {
    fail("context must be [B, L, " + std::to_string(c.cap_feat_dim) + "] text states");
  }
  const at::Tensor& mask = inputs.context_mask;
  if (mask.defined() &&
      (mask.dim() != 2 || mask.size(0) != batch || mask.size(1) != context.size(1))) {
    fail("context_mask must be [B, L] like the context");
  }
}

}  // namespace

ZImageTransformer::ZImageTransformer(ZImageConfig config, Weights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  for (const TensorShape& tensor : zimage_transformer_layout(config_)) {
    nn::require_shape(weights_, tensor.name, tensor.shape);
  }
}

at::Tensor ZImageTransformer::forward(const at::Tensor& x_in, const at::Tensor& timestep,
                                      const NetworkInputs& inputs) const {
  check_inputs(config_, x_in, timestep, inputs);
  at::NoGradGuard no_grad;
  const ZImageConfig& c = config_;
  const Weights& w = weights_;
  // The pad tokens are plain parameters, in the compute dtype even where linear weights are
  // stored in a narrower one.
  const auto options = w.get("x_pad_token").options();
  const at::Tensor x = nn::pad_to_patch_size(x_in.to(options), c.patch_size);
  const at::Tensor adaln =
      timestep_conditioning(w, c, timestep.to(options.device(), at::kFloat));

  std::vector<int64_t> caption_lengths;
  Tokens caption = embed_captions(w, c, inputs, caption_lengths);
  Tokens image = embed_image(w, c, x, caption_lengths);
  image.states = run_blocks(w, c, "noise_refiner", c.n_refiner_layers, image, adaln);
  caption.states = run_blocks(w, c, "context_refiner", c.n_refiner_layers, caption, {});
  const int64_t image_count = (x.size(2) / c.patch_size) * (x.size(3) / c.patch_size);
  const at::Tensor states = run_blocks(w, c, "layers", c.n_layers, joint_tokens(image, caption),
                                       adaln).narrow(1, 0, image_count);

  const at::Tensor prediction =
      unpatchify(final_layer(w.sub("final_layer"), c, states, adaln), c.patch_size,
                 c.in_channels, x.size(2), x.size(3));
  const at::Tensor cropped = prediction.narrow(2, 0, x_in.size(2)).narrow(3, 0, x_in.size(3));
  return (-cropped).to(x_in.device(), at::kFloat);
}

std::unique_ptr<ZImageTransformer> load_zimage_transformer(const std::string& path,
                                                           at::Device device,
                                                           at::ScalarType dtype) {
  TensorMap tensors = load_zimage_weights(path, dtype);
  ZImageConfig config = zimage_config_for(path, tensors);
  Weights weights(std::move(tensors));
  weights.to(dtype, device);
  return std::make_unique<ZImageTransformer>(std::move(config), std::move(weights));
}

std::shared_ptr<const DiffusionNetwork> ZImageTransformer::with_weights(Weights weights) const {
  return std::make_shared<const ZImageTransformer>(config_, std::move(weights));
}

}  // namespace df::engine::zimage
