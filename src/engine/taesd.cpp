// TAESD's encoder and decoder: 3×3 convolutions, ReLU blocks with skips, strided downsampling and
// nearest-neighbour upsampling, read layer by layer from the networks' sequential indices.
#include "engine/taesd.h"

#include <string>

#include "engine/nn_ops.h"

namespace df::engine {
namespace {

constexpr int64_t kChannels = 64;
constexpr int64_t kLatentChannels = 4;
constexpr int kStages = 3;            // downsampling (encoder) or upsampling (decoder) stages
constexpr int kBlocksPerStage = 3;

// The 3×3 convolution at sequential index `layer` (padding 1).
at::Tensor conv(const Weights& net, int layer, const at::Tensor& x, int64_t stride = 1) {
  return nn::conv2d(net.sub(std::to_string(layer)), x, stride, 1);
}

// TAESD's Block: conv-ReLU-conv-ReLU-conv plus the input (through a 1×1 "skip" where the block
// changes the channel count), then ReLU.
at::Tensor block(const Weights& net, int layer, const at::Tensor& x) {
  const Weights w = net.sub(std::to_string(layer));
  at::Tensor h = at::relu(nn::conv2d(w.sub("conv.0"), x, 1, 1));
  h = at::relu(nn::conv2d(w.sub("conv.2"), h, 1, 1));
  h = nn::conv2d(w.sub("conv.4"), h, 1, 1);
  h = w.has("skip.weight") ? h + nn::conv2d(w.sub("skip"), x, 1, 0) : h + x;
  return at::relu(h);
}

// `count` blocks at consecutive indices from `first`.
at::Tensor blocks(const Weights& net, int first, int count, at::Tensor x) {
  for (int i = 0; i < count; ++i) x = block(net, first + i, x);
  return x;
}

}  // namespace

TinyAutoencoder::TinyAutoencoder(Weights encoder, Weights decoder, double latent_scale)
    : encoder_(std::move(encoder)), decoder_(std::move(decoder)), latent_scale_(latent_scale) {
  check_weights();
}

void TinyAutoencoder::check_weights() const {
  nn::require_shape(encoder_, "0.weight", {kChannels, 3, 3, 3});
  nn::require_shape(encoder_, "14.weight", {kLatentChannels, kChannels, 3, 3});
  nn::require_shape(decoder_, "1.weight", {kChannels, kLatentChannels, 3, 3});
  nn::require_shape(decoder_, "19.weight", {3, kChannels, 3, 3});
}

// Sequential layout: conv 0, block 1, then per stage a stride-2 conv and three blocks (2-5, 6-9,
// 10-13), conv 14 to the latent channels. The network takes images in [0, 1].
at::Tensor TinyAutoencoder::encode(const at::Tensor& image) const {
  at::Tensor x = image.to(encoder_.get("0.weight").options()) * 0.5 + 0.5;
  x = block(encoder_, 1, conv(encoder_, 0, x));
  for (int stage = 0; stage < kStages; ++stage) {
    const int first = 2 + stage * (kBlocksPerStage + 1);
    x = blocks(encoder_, first + 1, kBlocksPerStage, conv(encoder_, first, x, 2));
  }
  return conv(encoder_, 14, x) / latent_scale_;
}

// Sequential layout: the soft clamp 3·tanh(x/3) (0), conv 1 and ReLU (2), then per stage three
// blocks, a ×2 nearest upsample and a conv (3-7, 8-12, 13-17), block 18, conv 19 to RGB in [0, 1].
at::Tensor TinyAutoencoder::decode(const at::Tensor& latents) const {
  at::Tensor x = latents.to(decoder_.get("1.weight").options()) * latent_scale_;
  x = at::relu(conv(decoder_, 1, at::tanh(x / 3.0) * 3.0));
  for (int stage = 0; stage < kStages; ++stage) {
    const int first = 3 + stage * (kBlocksPerStage + 2);
    x = blocks(decoder_, first, kBlocksPerStage, x);
    x = at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});
    x = conv(decoder_, first + kBlocksPerStage + 1, x);
  }
  x = conv(decoder_, 19, block(decoder_, 18, x));
  return (x - 0.5) * 2.0;
}

}  // namespace df::engine
