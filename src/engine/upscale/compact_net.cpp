// Real-ESRGAN's compact network: convolutions and PReLUs at alternating "body" indices, the last
// convolution's channels pixel-shuffled to the output size, plus the nearest-upsampled input.
#include "engine/upscale/compact_net.h"

#include <cmath>
#include <optional>

#include "core/error.h"
#include "engine/nn_ops.h"
#include "engine/upscale/state_dict_keys.h"

namespace df::engine::upscale {
namespace {

struct CompactSizes {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t features = 64;
  int last = 0;  // the body index of the last convolution
  int64_t scale = 4;
};

std::string body(int index) { return "body." + std::to_string(index); }

bool is_square(int64_t n) {
  const auto root = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  return root * root == n;
}

// scale² · channels = `outputs`, trying the input channels, then 3, 4 and 1 channels.
std::optional<std::pair<int64_t, int64_t>> scale_and_channels(int64_t outputs,
                                                               int64_t in_channels) {
  for (int64_t channels : {in_channels, int64_t{3}, int64_t{4}, int64_t{1}}) {
    if (channels > 0 && outputs % channels == 0 && is_square(outputs / channels)) {
      const double scale = std::sqrt(static_cast<double>(outputs / channels));
      return std::make_pair(static_cast<int64_t>(std::llround(scale)), channels);
    }
  }
  return std::nullopt;
}

CompactSizes read_sizes(const Weights& w, const TensorMap& tensors) {
  CompactSizes s;
  s.last = sequence_length(tensors, "body") - 1;
  const at::Tensor& first = w.get("body.0.weight");
  if (first.dim() != 4 || s.last < 2 || s.last % 2 != 0) {
    throw Error(ErrorCode::kCorruptFile, "compact upscale model with an unexpected body layout (" +
                                             std::to_string(s.last + 1) + " layers)");
  }
  s.features = first.size(0);
  s.in_channels = first.size(1);
  const int64_t outputs = w.get(body(s.last) + ".bias").size(0);
  const auto found = scale_and_channels(outputs, s.in_channels);
  if (!found) {
    throw Error(ErrorCode::kCorruptFile,
                "compact upscale model whose last convolution has " + std::to_string(outputs) +
                    " outputs: no scale² × channels");
  }
  std::tie(s.scale, s.out_channels) = *found;
  if (s.out_channels != s.in_channels) {
    throw Error(ErrorCode::kUnsupported,
                "compact upscale model with " + std::to_string(s.in_channels) + " input and " +
                    std::to_string(s.out_channels) + " output channels");
  }
  return s;
}

void require_shapes(const Weights& w, const CompactSizes& s) {
  for (int i = 0; i < s.last; i += 2) {
    const int64_t in = i == 0 ? s.in_channels : s.features;
    nn::require_shape(w, body(i) + ".weight", {s.features, in, 3, 3});
    nn::require_shape(w, body(i) + ".bias", {s.features});
    nn::require_shape(w, body(i + 1) + ".weight", {s.features});
  }
  const int64_t outputs = s.out_channels * s.scale * s.scale;
  nn::require_shape(w, body(s.last) + ".weight", {outputs, s.features, 3, 3});
  nn::require_shape(w, body(s.last) + ".bias", {outputs});
}

class CompactNet : public UpscaleNetwork {
 public:
  CompactNet(Weights weights, CompactSizes sizes) : w_(std::move(weights)), s_(sizes) {}

  at::Tensor forward(const at::Tensor& input) const override {
    const at::Tensor images = input.to(w_.get("body.0.weight").options());
    at::Tensor h = images;
    for (int i = 0; i < s_.last; i += 2) {
      h = at::prelu(nn::conv2d(w_.sub(body(i)), h, 1, 1), w_.get(body(i + 1) + ".weight"));
    }
    h = at::pixel_shuffle(nn::conv2d(w_.sub(body(s_.last)), h, 1, 1), s_.scale);
    const at::Tensor base =
        at::upsample_nearest2d(images, {images.size(2) * s_.scale, images.size(3) * s_.scale});
    return h + base;
  }

 private:
  Weights w_;
  CompactSizes s_;
};

}  // namespace

bool is_compact_net(const TensorMap& tensors) {
  return has_all(tensors, {"body.0.weight", "body.1.weight"});
}

UpscaleModel make_compact_net(TensorMap tensors) {
  const Weights weights(tensors);
  const CompactSizes sizes = read_sizes(weights, tensors);
  require_shapes(weights, sizes);
  UpscaleModel model;
  model.architecture = "RealESRGAN Compact";
  model.scale = static_cast<int>(sizes.scale);
  model.input_channels = sizes.in_channels;
  model.output_channels = sizes.out_channels;
  model.network = std::make_shared<const CompactNet>(weights, sizes);
  return model;
}

}  // namespace df::engine::upscale
