// ControlNet forward: hint encoder added after conv_in, the UNet's down path and mid block, and a
// 1x1 zero convolution on every skip and on the mid block's output.
#include "engine/control/controlnet.h"

#include <string>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/nn_ops.h"

namespace df::engine {
namespace {

std::string indexed(const std::string& name, size_t index) {
  return name + "." + std::to_string(index);
}

// The diffusers ControlNet's hint encoder: conv_in, then pairs of 3x3 convolutions (the second of
// each pair halves the size), each followed by SiLU, then conv_out.
size_t hint_block_count(const ControlNetConfig& config) {
  return 2 * (config.conditioning_embedding_out_channels.size() - 1);
}

// Every position holds the map's mean over its positions (ComfyUI's global_average_pooling).
at::Tensor spatial_mean(const at::Tensor& residual) {
  return residual.mean({2, 3}, /*keepdim=*/true).expand_as(residual);
}

}  // namespace

ControlNet::ControlNet(ControlNetConfig config, Weights weights)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      down_path_(UNet::encoder_only(config_.unet, weights_)) {
  check_weights();
}

UNetControl ControlNet::control(const ControlCall& call, const HintAtSize& hint_at) const {
  const at::Tensor hint = hint_for_batch(hint_at(call.sample.size(3) * 8, call.sample.size(2) * 8),
                                         call.sample.size(0), call.conditionings);
  return forward(call.sample, call.timesteps, call.context, call.added, hint);
}

void ControlNet::check_weights() const {
  const auto& hint = config_.conditioning_embedding_out_channels;
  const Weights embedding = weights_.sub("controlnet_cond_embedding");
  nn::require_shape(embedding, "conv_in.weight", {hint[0], config_.conditioning_channels, 3, 3});
  for (size_t i = 0; i + 1 < hint.size(); ++i) {
    nn::require_shape(embedding, indexed("blocks", 2 * i) + ".weight", {hint[i], hint[i], 3, 3});
    nn::require_shape(embedding, indexed("blocks", 2 * i + 1) + ".weight",
                      {hint[i + 1], hint[i], 3, 3});
  }
  const int64_t c0 = config_.unet.block_out_channels[0];
  nn::require_shape(embedding, "conv_out.weight", {c0, hint.back(), 3, 3});
  const int64_t deepest = config_.unet.block_out_channels.back();
  nn::require_shape(weights_, "controlnet_mid_block.weight", {deepest, deepest, 1, 1});
  const size_t levels = config_.unet.block_out_channels.size();
  const size_t skips = 1 + levels * config_.unet.layers_per_block + (levels - 1);
  if (!weights_.has(indexed("controlnet_down_blocks", skips - 1) + ".weight") ||
      weights_.has(indexed("controlnet_down_blocks", skips) + ".weight")) {
    throw Error(ErrorCode::kCorruptFile, "ControlNet weights: expected " + std::to_string(skips) +
                                             " zero convolutions (controlnet_down_blocks)");
  }
}

void ControlNet::check_fits_model(const at::Tensor& context,
                                  const std::optional<UNetAddedConditioning>& added) const {
  const UNetConfig& unet = config_.unet;
  const bool wants_added = unet.addition_embed_type == "text_time";
  if (context.dim() == 3 && context.size(2) == unet.cross_attention_dim &&
      wants_added == added.has_value()) {
    return;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "this ControlNet was made for another model family (it reads " +
                  std::to_string(unet.cross_attention_dim) + "-wide text conditioning" +
                  (wants_added ? " with SDXL's pooled embedding" : "") + ", the model gives " +
                  (context.dim() == 3 ? std::to_string(context.size(2)) : std::string("no")) +
                  "-wide" + (added ? " with SDXL's pooled embedding" : "") +
                  "); use a ControlNet of the checkpoint's family");
}

at::Tensor ControlNet::embed_hint(const at::Tensor& hint, int64_t batch) const {
  const Weights embedding = weights_.sub("controlnet_cond_embedding");
  const at::Tensor& conv_in = embedding.get("conv_in.weight");
  at::Tensor h = nn::silu_in_place(nn::conv2d(embedding.sub("conv_in"), hint.to(conv_in.options()), 1, 1));
  for (size_t i = 0; i < hint_block_count(config_); ++i) {
    const int64_t stride = i % 2 == 1 ? 2 : 1;
    h = nn::silu_in_place(nn::conv2d(embedding.sub(indexed("blocks", i)), h, stride, 1));
  }
  h = nn::conv2d(embedding.sub("conv_out"), h, 1, 1);
  return h.size(0) == batch ? h : h.expand({batch, -1, -1, -1});
}

UNetControl ControlNet::forward(const at::Tensor& sample, const at::Tensor& timesteps,
                                const at::Tensor& context,
                                const std::optional<UNetAddedConditioning>& added,
                                const at::Tensor& hint) const {
  check_fits_model(context, added);
  const int64_t batch = sample.size(0);
  if (hint.dim() != 4 || (hint.size(0) != 1 && hint.size(0) != batch) ||
      hint.size(1) != config_.conditioning_channels || hint.size(2) != sample.size(2) * 8 ||
      hint.size(3) != sample.size(3) * 8) {
    throw Error(ErrorCode::kInvalidArgument,
                "ControlNet hint must be [1 or batch, " +
                    std::to_string(config_.conditioning_channels) + ", 8 x latent height, 8 x "
                    "latent width]");
  }
  at::NoGradGuard no_grad;
  UNetStep step;
  step.control.input = {embed_hint(hint, batch)};
  const UNetEncoding encoding = down_path_.encode(sample, timesteps, context, added, step);
  UNetControl residuals;
  for (size_t i = 0; i < encoding.skips.size(); ++i) {
    residuals.output.push_back(
        nn::conv2d(weights_.sub(indexed("controlnet_down_blocks", i)), encoding.skips[i], 1, 0));
  }
  residuals.middle = nn::conv2d(weights_.sub("controlnet_mid_block"), encoding.middle, 1, 0);
  if (config_.global_pool_conditions) {
    for (at::Tensor& residual : residuals.output) residual = spatial_mean(residual);
    residuals.middle = spatial_mean(residuals.middle);
  }
  return residuals;
}

}  // namespace df::engine
