// UNet2DConditionModel forward: time embedding (+ SDXL text_time), down path with skips, cross-
// attention mid block, up path consuming the skips, output head.
#include "engine/unet.h"

#include <string>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/nn_ops.h"

namespace df::engine {
namespace {

constexpr double kTransformerGroupNormEps = 1e-6;
constexpr double kTransformerLayerNormEps = 1e-5;

bool is_known_down_block(const std::string& type) {
  return type == "CrossAttnDownBlock2D" || type == "DownBlock2D";
}
bool is_known_up_block(const std::string& type) {
  return type == "CrossAttnUpBlock2D" || type == "UpBlock2D";
}

std::string indexed(const std::string& name, size_t index) {
  return name + "." + std::to_string(index);
}

Error bad_input(const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, "UNet input: " + message);
}

// Adds residuals[index] to h when there is one (ComfyUI's apply_control).
void add_control(at::Tensor& h, const std::vector<at::Tensor>& residuals, size_t index) {
  if (index >= residuals.size() || !residuals[index].defined()) return;
  const at::Tensor& residual = residuals[index];
  if (residual.sizes() != h.sizes()) {
    throw bad_input("a control residual of shape " + std::to_string(residual.size(1)) + "x" +
                    std::to_string(residual.size(2)) + "x" + std::to_string(residual.size(3)) +
                    " does not fit its block's " + std::to_string(h.size(1)) + "x" +
                    std::to_string(h.size(2)) + "x" + std::to_string(h.size(3)));
  }
  h = h + residual.to(h.options());
}

}  // namespace

bool UNetPatches::empty() const {
  return attention.self_attention.empty() && attention.cross_attention.empty() &&
         input_block.empty() && input_block_after_skip.empty() && output_block.empty() &&
         self_attention_replacements.empty();
}

void UNetPatches::append(const UNetPatches& more) {
  const auto add = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
  add(attention.self_attention, more.attention.self_attention);
  add(attention.cross_attention, more.attention.cross_attention);
  add(input_block, more.input_block);
  add(input_block_after_skip, more.input_block_after_skip);
  add(output_block, more.output_block);
  add(self_attention_replacements, more.self_attention_replacements);
}

UNet::UNet(UNetConfig config, Weights weights) : UNet(std::move(config), std::move(weights), false) {}

UNet::UNet(UNetConfig config, Weights weights, bool encoder_only)
    : config_(std::move(config)), weights_(std::move(weights)), encoder_only_(encoder_only) {
  check_weights();
}

UNet UNet::encoder_only(UNetConfig config, Weights weights) {
  return UNet(std::move(config), std::move(weights), true);
}

void UNet::check_weights() const {
  const auto& c = config_;
  const size_t blocks = c.block_out_channels.size();
  if (blocks == 0 || c.down_block_types.size() != blocks ||
      (!encoder_only_ && c.up_block_types.size() != blocks) ||
      c.num_attention_heads.size() != blocks || c.transformer_layers_per_block.size() != blocks) {
    throw Error(ErrorCode::kCorruptFile, "UNet config: per-block lists differ in length");
  }
  if (!c.addition_embed_type.empty() && c.addition_embed_type != "text_time") {
    throw Error(ErrorCode::kUnsupported,
                "UNet addition_embed_type '" + c.addition_embed_type + "' is not supported");
  }
  const int64_t c0 = c.block_out_channels[0];
  nn::require_shape(weights_, "conv_in.weight", {c0, c.in_channels, 3, 3});
  if (!encoder_only_) nn::require_shape(weights_, "conv_out.weight", {c.out_channels, c0, 3, 3});
  nn::require_shape(weights_, "time_embedding.linear_1.weight", {4 * c0, c0});
  if (c.addition_embed_type == "text_time") {
    nn::require_shape(weights_, "add_embedding.linear_1.weight",
                      {4 * c0, c.projection_class_embeddings_input_dim});
  }
  if (!c.class_embed_type.empty() && c.class_embed_type != "projection") {
    throw Error(ErrorCode::kUnsupported,
                "UNet class_embed_type '" + c.class_embed_type + "' is not supported");
  }
  if (c.class_embed_type == "projection") {
    nn::require_shape(weights_, "class_embedding.linear_1.weight",
                      {4 * c0, c.projection_class_embeddings_input_dim});
  }
  for (size_t i = 0; i < blocks; ++i) {
    const std::string up_type = encoder_only_ ? "UpBlock2D" : c.up_block_types[i];
    if (!is_known_down_block(c.down_block_types[i]) || !is_known_up_block(up_type)) {
      throw Error(ErrorCode::kUnsupported, "UNet block type '" + c.down_block_types[i] + "' / '" +
                                               up_type + "' is not supported");
    }
    const int64_t channels = c.block_out_channels[i];
    if (c.num_attention_heads[i] <= 0 || channels % c.num_attention_heads[i] != 0) {
      throw Error(ErrorCode::kCorruptFile, "UNet config: " + std::to_string(channels) +
                                               " channels do not split into " +
                                               std::to_string(c.num_attention_heads[i]) + " heads");
    }
    if (c.down_block_types[i] != "CrossAttnDownBlock2D") continue;
    const Weights attention = weights_.sub(indexed("down_blocks", i)).sub("attentions.0");
    if (c.use_linear_projection) {
      nn::require_shape(attention, "proj_in.weight", {channels, channels});
    } else {
      nn::require_shape(attention, "proj_in.weight", {channels, channels, 1, 1});
    }
    nn::require_shape(attention, "transformer_blocks.0.attn2.to_k.weight",
                      {channels, c.cross_attention_dim});
  }
}

void UNet::check_inputs(const at::Tensor& sample, const at::Tensor& timesteps,
                        const at::Tensor& context,
                        const std::optional<UNetAddedConditioning>& added) const {
  if (sample.dim() != 4 || sample.size(1) != config_.in_channels || sample.numel() == 0) {
    throw bad_input("sample must be [batch, " + std::to_string(config_.in_channels) +
                    ", height, width]");
  }
  const int64_t batch = sample.size(0);
  if (timesteps.numel() != 1 && !(timesteps.dim() == 1 && timesteps.size(0) == batch)) {
    throw bad_input("timesteps must hold one value or one per sample");
  }
  if (context.dim() != 3 || context.size(0) != batch ||
      context.size(2) != config_.cross_attention_dim || context.size(1) == 0) {
    throw bad_input("context must be [batch, tokens, " +
                    std::to_string(config_.cross_attention_dim) + "]");
  }
  const bool wants_class = config_.class_embed_type == "projection";
  const bool wants_added = config_.addition_embed_type == "text_time";
  if (!wants_added && !wants_class) {
    if (added) throw bad_input("this UNet takes no pooled text embeddings or time ids");
    return;
  }
  if (wants_class) {
    const at::Tensor labels = added ? added->class_labels : at::Tensor();
    if (!labels.defined() || labels.dim() != 2 || labels.size(0) != batch ||
        labels.size(1) != config_.projection_class_embeddings_input_dim) {
      throw bad_input("this UNet needs class labels (image embeddings) [batch, " +
                      std::to_string(config_.projection_class_embeddings_input_dim) + "]");
    }
    return;
  }
  if (!added) throw bad_input("this UNet needs pooled text embeddings and time ids");
  const at::Tensor& text = added->text_embeds;
  const at::Tensor& ids = added->time_ids;
  if (!text.defined() || !ids.defined() || text.dim() != 2 || ids.dim() != 2 ||
      text.size(0) != batch || ids.size(0) != batch ||
      text.size(1) + ids.size(1) * config_.addition_time_embed_dim !=
          config_.projection_class_embeddings_input_dim) {
    throw bad_input("text_embeds [batch, P] and time_ids [batch, n] must give P + n*" +
                    std::to_string(config_.addition_time_embed_dim) + " = " +
                    std::to_string(config_.projection_class_embeddings_input_dim));
  }
}

at::Tensor UNet::time_embedding(const at::Tensor& timesteps, int64_t batch,
                                const std::optional<UNetAddedConditioning>& added,
                                const at::TensorOptions& options) const {
  const at::Tensor t = timesteps.to(options.device(), at::kFloat).reshape({-1}).expand({batch});
  const at::Tensor features = nn::timestep_embedding(t, config_.block_out_channels[0],
                                                     config_.flip_sin_to_cos, config_.freq_shift);
  at::Tensor temb = nn::timestep_mlp(weights_.sub("time_embedding"), features.to(options));
  if (config_.class_embed_type == "projection") {
    temb = temb + nn::timestep_mlp(weights_.sub("class_embedding"), added->class_labels.to(options));
  }
  if (config_.addition_embed_type == "text_time") {
    const at::Tensor time_features =
        nn::timestep_embedding(added->time_ids.to(options.device()).reshape({-1}),
                               config_.addition_time_embed_dim, config_.flip_sin_to_cos,
                               config_.freq_shift)
            .reshape({batch, -1});
    const at::Tensor text = added->text_embeds.to(options.device(), at::kFloat);
    temb = temb + nn::timestep_mlp(weights_.sub("add_embedding"),
                                   at::cat({text, time_features}, -1).to(options));
  }
  return temb;
}

at::Tensor UNet::resnet(const Weights& w, const at::Tensor& x, const at::Tensor& temb) const {
  return nn::resnet_block(w, x, temb, config_.norm_num_groups, config_.norm_eps);
}

UNet UNet::with_patches(const UNetPatches& patches) const {
  UNet copy = *this;
  copy.patches_.append(patches);
  return copy;
}

const AttentionReplacement* UNet::self_attention_replacement(const UNetBlock& block,
                                                             size_t transformer_index) const {
  const AttentionReplacement* whole_block = nullptr;
  const auto& entries = patches_.self_attention_replacements;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (!(it->block == block)) continue;
    if (it->transformer_index == transformer_index) return &it->replace;
    if (!it->transformer_index && !whole_block) whole_block = &it->replace;
  }
  return whole_block;
}

at::Tensor UNet::attend(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                        int64_t heads, const std::vector<AttentionPatch>& patches,
                        const AttentionReplacement* replacement) const {
  if (patches.empty() && !replacement) return nn::attention_block(w, x, context, heads);
  AttentionInputs inputs{x, context, context};
  for (const AttentionPatch& patch : patches) patch(inputs);
  const at::Tensor q = nn::linear(w.sub("to_q"), inputs.query);
  const at::Tensor k = nn::linear(w.sub("to_k"), inputs.key);
  const at::Tensor v = nn::linear(w.sub("to_v"), inputs.value);
  const at::Tensor out = replacement ? (*replacement)(q, k, v, heads)
                                     : nn::attention(q, k, v, heads, /*causal=*/false);
  return nn::linear(w.sub("to_out.0"), out);
}

at::Tensor UNet::transformer_block(const Weights& w, const at::Tensor& x,
                                   const at::Tensor& context, int64_t heads,
                                   const AttentionReplacement* self_replacement) const {
  const double eps = kTransformerLayerNormEps;
  const at::Tensor normed = nn::layer_norm(w.sub("norm1"), x, eps);
  at::Tensor h = x + attend(w.sub("attn1"), normed, normed, heads,
                            patches_.attention.self_attention, self_replacement);
  h = h + attend(w.sub("attn2"), nn::layer_norm(w.sub("norm2"), h, eps), context, heads,
                 patches_.attention.cross_attention);
  return h + nn::geglu_feed_forward(w.sub("ff"), nn::layer_norm(w.sub("norm3"), h, eps));
}

at::Tensor UNet::spatial_transformer(const Weights& w, const at::Tensor& x,
                                     const at::Tensor& context, int64_t heads,
                                     const UNetBlock& block) const {
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  const auto to_tokens = [&](const at::Tensor& t) {
    return t.permute({0, 2, 3, 1}).reshape({batch, height * width, channels});
  };
  const auto to_image = [&](const at::Tensor& t) {
    return t.reshape({batch, height, width, channels})
        .permute({0, 3, 1, 2})
        .contiguous(x.suggest_memory_format());
  };
  const at::Tensor normed =
      nn::group_norm(w.sub("norm"), x, config_.norm_num_groups, kTransformerGroupNormEps);
  const bool linear = config_.use_linear_projection;
  at::Tensor h = linear ? nn::linear(w.sub("proj_in"), to_tokens(normed))
                        : to_tokens(nn::conv2d(w.sub("proj_in"), normed, 1, 0));
  for (size_t k = 0; w.has(indexed("transformer_blocks", k) + ".norm1.weight"); ++k) {
    h = transformer_block(w.sub(indexed("transformer_blocks", k)), h, context, heads,
                          self_attention_replacement(block, k));
  }
  h = linear ? to_image(nn::linear(w.sub("proj_out"), h))
             : nn::conv2d(w.sub("proj_out"), to_image(h), 1, 0);
  return h.add_(x);
}

void UNet::end_input_block(at::Tensor& h, std::vector<at::Tensor>& skips,
                           const UNetStep& step) const {
  const UNetPatchContext context{{UNetStage::kInput, static_cast<int64_t>(skips.size())}, step.sigma};
  add_control(h, step.control.input, skips.size());
  for (const InputBlockPatch& patch : patches_.input_block) h = patch(h, context);
  skips.push_back(h);
  for (const InputBlockPatch& patch : patches_.input_block_after_skip) h = patch(h, context);
}

void UNet::patch_output_block(at::Tensor& h, at::Tensor& skip, int64_t index,
                              const UNetStep& step) const {
  const UNetPatchContext context{{UNetStage::kOutput, index}, step.sigma};
  for (const OutputBlockPatch& patch : patches_.output_block) patch(h, skip, context);
}

UNetEncoding UNet::encode(const at::Tensor& sample, const at::Tensor& timesteps,
                          const at::Tensor& context,
                          const std::optional<UNetAddedConditioning>& added,
                          const UNetStep& step) const {
  check_inputs(sample, timesteps, context, added);
  at::NoGradGuard no_grad;
  return down_path(sample, timesteps, context, added, step).encoding;
}

at::Tensor UNet::forward(const at::Tensor& sample, const at::Tensor& timesteps,
                         const at::Tensor& context,
                         const std::optional<UNetAddedConditioning>& added,
                         const UNetStep& step) const {
  if (encoder_only_) throw Error(ErrorCode::kInternal, "an encoder-only UNet has no up path");
  check_inputs(sample, timesteps, context, added);
  at::NoGradGuard no_grad;
  // Channels-last activations (bfloat16 on the CPU, see Weights::to) leave in the usual layout.
  return up_path(down_path(sample, timesteps, context, added, step), step).contiguous();
}

UNet::DownPath UNet::down_path(const at::Tensor& sample, const at::Tensor& timesteps,
                               const at::Tensor& context,
                               const std::optional<UNetAddedConditioning>& added,
                               const UNetStep& step) const {
  const at::Tensor& conv_in = weights_.get("conv_in.weight");
  const at::TensorOptions options = conv_in.options();
  const int64_t batch = sample.size(0);
  const at::Tensor temb = time_embedding(timesteps, batch, added, options);
  const at::Tensor ctx = context.to(options);
  const auto& heads = config_.num_attention_heads;
  const size_t blocks = config_.block_out_channels.size();
  const size_t layers = config_.layers_per_block;

  at::Tensor h = nn::conv2d(weights_.sub("conv_in"), sample.to(options), 1, 1);
  std::vector<at::Tensor> skips;
  end_input_block(h, skips, step);
  for (size_t i = 0; i < blocks; ++i) {
    const Weights block = weights_.sub(indexed("down_blocks", i));
    const bool cross = config_.down_block_types[i] == "CrossAttnDownBlock2D";
    for (size_t j = 0; j < layers; ++j) {
      h = resnet(block.sub(indexed("resnets", j)), h, temb);
      if (cross) {
        const UNetBlock input{UNetStage::kInput, static_cast<int64_t>(skips.size())};
        h = spatial_transformer(block.sub(indexed("attentions", j)), h, ctx, heads[i], input);
      }
      end_input_block(h, skips, step);
    }
    if (i + 1 < blocks) {
      h = nn::downsample(block.sub("downsamplers.0"), h, nn::DownsamplePadding::kSymmetric);
      end_input_block(h, skips, step);
    }
  }

  const Weights mid = weights_.sub("mid_block");
  h = resnet(mid.sub("resnets.0"), h, temb);
  h = spatial_transformer(mid.sub("attentions.0"), h, ctx, heads.back(),
                          {UNetStage::kMiddle, 0});
  h = resnet(mid.sub("resnets.1"), h, temb);
  return {temb, ctx, {std::move(skips), h}};
}

at::Tensor UNet::up_path(DownPath down, const UNetStep& step) const {
  const at::Tensor& temb = down.temb;
  const at::Tensor& ctx = down.context;
  std::vector<at::Tensor>& skips = down.encoding.skips;
  at::Tensor h = down.encoding.middle;
  add_control(h, {step.control.middle}, 0);
  const auto& heads = config_.num_attention_heads;
  const size_t blocks = config_.block_out_channels.size();
  const size_t layers = config_.layers_per_block;
  int64_t output_index = 0;
  for (size_t j = 0; j < blocks; ++j) {
    const Weights block = weights_.sub(indexed("up_blocks", j));
    const bool cross = config_.up_block_types[j] == "CrossAttnUpBlock2D";
    for (size_t k = 0; k <= layers; ++k, ++output_index) {
      at::Tensor skip = skips.back();
      skips.pop_back();
      add_control(skip, step.control.output, skips.size());
      patch_output_block(h, skip, output_index, step);
      h = resnet(block.sub(indexed("resnets", k)), at::cat({h, skip}, 1), temb);
      if (cross) {
        h = spatial_transformer(block.sub(indexed("attentions", k)), h, ctx,
                                heads[blocks - 1 - j], {UNetStage::kOutput, output_index});
      }
    }
    // Upsampling to the next skip's size equals ×2 for even sizes and also fits odd latents.
    if (j + 1 < blocks) {
      h = nn::upsample(block.sub("upsamplers.0"), h, skips.back().size(2), skips.back().size(3));
    }
  }

  h = nn::silu_in_place(
      nn::group_norm(weights_.sub("conv_norm_out"), h, config_.norm_num_groups, config_.norm_eps));
  return nn::conv2d(weights_.sub("conv_out"), h, 1, 1);
}

}  // namespace df::engine
