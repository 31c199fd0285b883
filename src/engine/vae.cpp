// AutoencoderKL forward passes: encoder to latent moments, decoder from latents to pixels.
#include "engine/vae.h"

#include <string>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/nn_ops.h"

namespace df::engine {
namespace {

constexpr double kVaeNormEps = 1e-6;

std::string indexed(const std::string& name, size_t index) {
  return name + "." + std::to_string(index);
}

void check_image_tensor(const at::Tensor& x, int64_t channels, const std::string& what) {
  if (x.dim() != 4 || x.size(1) != channels || x.numel() == 0) {
    throw Error(ErrorCode::kInvalidArgument, "VAE input: " + what + " must be [batch, " +
                                                 std::to_string(channels) + ", height, width]");
  }
}

}  // namespace

Vae::Vae(VaeConfig config, Weights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  check_weights();
}

void Vae::check_weights() const {
  const auto& c = config_;
  if (c.block_out_channels.empty()) {
    throw Error(ErrorCode::kCorruptFile, "VAE config has no block_out_channels");
  }
  const int64_t first = c.block_out_channels.front(), last = c.block_out_channels.back();
  nn::require_shape(weights_, "encoder.conv_in.weight", {first, c.in_channels, 3, 3});
  nn::require_shape(weights_, "encoder.conv_out.weight", {2 * c.latent_channels, last, 3, 3});
  nn::require_shape(weights_, "decoder.conv_in.weight", {last, c.latent_channels, 3, 3});
  nn::require_shape(weights_, "decoder.conv_out.weight", {c.out_channels, first, 3, 3});
  nn::require_shape(weights_, "decoder.mid_block.attentions.0.to_q.weight", {last, last});
}

at::Tensor Vae::resnet(const Weights& w, const at::Tensor& x) const {
  return nn::resnet_block(w, x, at::Tensor(), config_.norm_num_groups, kVaeNormEps);
}

// Single-head self-attention over all pixels, with its own GroupNorm and a residual connection.
at::Tensor Vae::mid_attention(const Weights& w, const at::Tensor& x) const {
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  const at::Tensor tokens =
      nn::group_norm(w.sub("group_norm"), x, config_.norm_num_groups, kVaeNormEps)
          .flatten(2)
          .transpose(1, 2);
  const at::Tensor attended = nn::attention_block(w, tokens, tokens, /*heads=*/1);
  return attended.transpose(1, 2).reshape({batch, channels, height, width}).add_(x);
}

at::Tensor Vae::mid_block(const Weights& w, const at::Tensor& x) const {
  at::Tensor h = resnet(w.sub("resnets.0"), x);
  h = mid_attention(w.sub("attentions.0"), h);
  return resnet(w.sub("resnets.1"), h);
}

at::Tensor Vae::output_head(const Weights& w, const at::Tensor& x) const {
  const at::Tensor h = nn::silu_in_place(
      nn::group_norm(w.sub("conv_norm_out"), x, config_.norm_num_groups, kVaeNormEps));
  return nn::conv2d(w.sub("conv_out"), h, 1, 1);
}

LatentMoments Vae::encode(const at::Tensor& image) const {
  check_image_tensor(image, config_.in_channels, "image");
  at::NoGradGuard no_grad;
  const Weights encoder = weights_.sub("encoder");
  const at::TensorOptions options = encoder.get("conv_in.weight").options();
  const size_t blocks = config_.block_out_channels.size();

  at::Tensor h = nn::conv2d(encoder.sub("conv_in"), image.to(options), 1, 1);
  for (size_t i = 0; i < blocks; ++i) {
    const Weights block = encoder.sub(indexed("down_blocks", i));
    for (int j = 0; j < config_.layers_per_block; ++j) {
      h = resnet(block.sub(indexed("resnets", j)), h);
    }
    if (i + 1 < blocks) {
      h = nn::downsample(block.sub("downsamplers.0"), h, nn::DownsamplePadding::kBottomRight);
    }
  }
  h = output_head(encoder, mid_block(encoder.sub("mid_block"), h));
  if (weights_.has("quant_conv.weight")) h = nn::conv2d(weights_.sub("quant_conv"), h, 1, 0);
  const auto moments = h.chunk(2, 1);
  return {moments[0], at::clamp(moments[1], -30.0, 20.0)};
}

at::Tensor Vae::decode(const at::Tensor& latents) const {
  check_image_tensor(latents, config_.latent_channels, "latents");
  at::NoGradGuard no_grad;
  const Weights decoder = weights_.sub("decoder");
  const at::TensorOptions options = decoder.get("conv_in.weight").options();
  const size_t blocks = config_.block_out_channels.size();

  at::Tensor z = latents.to(options);
  if (weights_.has("post_quant_conv.weight")) {
    z = nn::conv2d(weights_.sub("post_quant_conv"), z, 1, 0);
  }
  at::Tensor h = mid_block(decoder.sub("mid_block"), nn::conv2d(decoder.sub("conv_in"), z, 1, 1));
  for (size_t i = 0; i < blocks; ++i) {
    const Weights block = decoder.sub(indexed("up_blocks", i));
    for (int j = 0; j <= config_.layers_per_block; ++j) {
      h = resnet(block.sub(indexed("resnets", j)), h);
    }
    if (i + 1 < blocks) {
      h = nn::upsample(block.sub("upsamplers.0"), h, 2 * h.size(2), 2 * h.size(3));
    }
  }
  return output_head(decoder, h);
}

}  // namespace df::engine
