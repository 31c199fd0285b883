// ESRGAN's RRDBNet: a trunk of residual-in-residual dense blocks, ×2 nearest upsampling
// convolutions and two output convolutions, read in the old sequential key layout (newer layouts
// are renamed to it first, as spandrel does).
#include "engine/upscale/rrdb_net.h"

#include <regex>

#include "core/error.h"
#include "engine/nn_ops.h"
#include "engine/upscale/state_dict_keys.h"

namespace df::engine::upscale {
namespace {

constexpr double kLeakySlope = 0.2;     // every activation of the network
constexpr double kResidualScale = 0.2;  // dense blocks add 0.2 × their output to their input
constexpr int kDenseBlocksPerBlock = 3;
constexpr int kConvsPerDenseBlock = 5;
constexpr int64_t kMinimumSize = 2;             // spandrel's size requirements of ESRGAN
constexpr int64_t kUnshuffledSizeMultiple = 4;  // ... and of its pixel-unshuffled variants

struct RrdbSizes {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t features = 64;
  int64_t growth = 32;
  int blocks = 23;
  int upsamplings = 2;  // ×2 upsampling convolutions
  int64_t unshuffle = 1;  // Real-ESRGAN's pixel-unshuffle factor of the input (1: none)
  bool plus = false;      // ESRGAN+'s extra 1×1 residual paths
};

bool is_old_layout(const TensorMap& t) {
  return t.count("model.0.weight") > 0 && (t.count("model.1.sub.0.RDB1.conv1.0.weight") > 0 ||
                                           t.count("model.1.sub.0.RDB1.conv1x1.weight") > 0);
}

bool is_new_layout(const TensorMap& t) {
  return has_all(t, {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight",
                     "conv_last.weight"}) ||
         has_all(t, {"conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight", "trunk_conv.weight",
                     "conv_last.weight"});
}

// The number of upsampling convolutions of the new layouts: the largest K of "conv_upK.*" or
// "upconvK.*".
int new_layout_upsamplings(const TensorMap& tensors) {
  static const std::regex up(R"(^(?:conv_up|upconv)(\d)\.(?:weight|bias)$)");
  int count = 0;
  std::smatch match;
  for (const auto& [name, tensor] : tensors) {
    if (std::regex_match(name, match, up)) count = std::max(count, std::stoi(match[1]));
  }
  return count;
}

// The old-layout name of a new-layout tensor, or "" for tensors the network does not use.
std::string old_name(const std::string& name, int blocks, int upsamplings) {
  static const std::regex dense(
      R"(^(?:body|RRDB_trunk)\.(\d+)\.(?:rdb|RDB)(\d)\.conv(\d)\.(weight|bias)$)");
  static const std::regex layer(
      R"(^(conv_first|conv_body|trunk_conv|conv_hr|HRconv|conv_last)\.(weight|bias)$)");
  static const std::regex up(R"(^(?:conv_up|upconv)(\d)\.(weight|bias)$)");
  std::smatch m;
  if (std::regex_match(name, m, dense)) {
    return "model.1.sub." + m[1].str() + ".RDB" + m[2].str() + ".conv" + m[3].str() + ".0." +
           m[4].str();
  }
  if (std::regex_match(name, m, up)) {
    return "model." + std::to_string(3 * std::stoi(m[1])) + "." + m[2].str();
  }
  if (!std::regex_match(name, m, layer)) return "";
  const std::string layer_name = m[1], kind = m[2];
  if (layer_name == "conv_first") return "model.0." + kind;
  if (layer_name == "conv_body" || layer_name == "trunk_conv") {
    return "model.1.sub." + std::to_string(blocks) + "." + kind;
  }
  const int index = 3 * upsamplings + (layer_name == "conv_last" ? 4 : 2);
  return "model." + std::to_string(index) + "." + kind;
}

TensorMap to_old_layout(TensorMap tensors) {
  if (tensors.count("conv_first.weight") == 0) return tensors;
  const int blocks =
      std::max(sequence_length(tensors, "body"), sequence_length(tensors, "RRDB_trunk"));
  const int upsamplings = new_layout_upsamplings(tensors);
  TensorMap renamed;
  for (auto& [name, tensor] : tensors) {
    std::string target = old_name(name, blocks, upsamplings);
    if (!target.empty()) renamed.emplace(std::move(target), std::move(tensor));
  }
  return renamed;
}

// ×2 upsampling layers from the length of the sequential "model": conv, trunk, 3 per upsampling
// (upsample, conv, activation), conv, activation, conv.
int upsamplings_of(const TensorMap& tensors) {
  const int length = sequence_length(tensors, "model");
  const int upsamplings = (length - 5) / 3;
  if (length < 5 || (length - 5) % 3 != 0 || upsamplings > 3) {
    throw Error(ErrorCode::kUnsupported,
                "ESRGAN model with a sequential network of " + std::to_string(length) +
                    " layers: only x1, x2, x4 and x8 networks are supported");
  }
  return upsamplings;
}

const at::Tensor& conv_weight(const Weights& w, const std::string& name) {
  const at::Tensor& t = w.get(name);
  if (t.dim() != 4) {
    throw Error(ErrorCode::kCorruptFile,
                "ESRGAN tensor '" + name + "' is not a convolution weight");
  }
  return t;
}

std::string last_conv(int upsamplings) { return "model." + std::to_string(3 * upsamplings + 4); }

RrdbSizes read_sizes(const Weights& w, const TensorMap& tensors) {
  RrdbSizes s;
  s.upsamplings = upsamplings_of(tensors);
  s.blocks = sequence_length(tensors, "model.1.sub") - 1;
  if (s.blocks < 1) throw Error(ErrorCode::kCorruptFile, "ESRGAN model without RRDB blocks");
  const at::Tensor& first = conv_weight(w, "model.0.weight");
  s.features = first.size(0);
  s.in_channels = first.size(1);
  s.growth = conv_weight(w, "model.1.sub.0.RDB1.conv1.0.weight").size(0);
  s.out_channels = conv_weight(w, last_conv(s.upsamplings) + ".weight").size(0);
  s.plus = w.has("model.1.sub.0.RDB1.conv1x1.weight");
  if (s.in_channels == s.out_channels * 4) s.unshuffle = 2;
  if (s.in_channels == s.out_channels * 16) s.unshuffle = 4;
  return s;
}

void require_conv(const Weights& w, const std::string& name, int64_t out, int64_t in,
                  int64_t kernel = 3) {
  nn::require_shape(w, name + ".weight", {out, in, kernel, kernel});
  nn::require_shape(w, name + ".bias", {out});
}

void require_dense_block(const Weights& w, const RrdbSizes& s) {
  for (int j = 1; j <= kConvsPerDenseBlock; ++j) {
    const int64_t out = j < kConvsPerDenseBlock ? s.growth : s.features;
    require_conv(w, "conv" + std::to_string(j) + ".0", out, s.features + (j - 1) * s.growth);
  }
  if (s.plus) nn::require_shape(w, "conv1x1.weight", {s.growth, s.features, 1, 1});
}

void require_shapes(const Weights& w, const RrdbSizes& s) {
  const int64_t f = s.features;
  require_conv(w, "model.0", f, s.in_channels);
  for (int b = 0; b < s.blocks; ++b) {
    for (int d = 1; d <= kDenseBlocksPerBlock; ++d) {
      const std::string block = "model.1.sub." + std::to_string(b) + ".RDB" + std::to_string(d);
      require_dense_block(w.sub(block), s);
    }
  }
  require_conv(w, "model.1.sub." + std::to_string(s.blocks), f, f);
  for (int k = 1; k <= s.upsamplings; ++k) require_conv(w, "model." + std::to_string(3 * k), f, f);
  require_conv(w, "model." + std::to_string(3 * s.upsamplings + 2), f, f);
  require_conv(w, last_conv(s.upsamplings), s.out_channels, f);
}

at::Tensor conv(const Weights& w, const at::Tensor& x) { return nn::conv2d(w, x, 1, 1); }

at::Tensor conv_act(const Weights& w, const at::Tensor& x) {
  return at::leaky_relu(conv(w, x), kLeakySlope);
}

// ResidualDenseBlock_5C: each convolution sees the input and every earlier output.
at::Tensor dense_block(const Weights& w, const at::Tensor& x, bool plus) {
  const at::Tensor x1 = conv_act(w.sub("conv1.0"), x);
  at::Tensor x2 = conv_act(w.sub("conv2.0"), at::cat({x, x1}, 1));
  if (plus) x2 = x2 + nn::conv2d(w.sub("conv1x1"), x, 1, 0);
  const at::Tensor x3 = conv_act(w.sub("conv3.0"), at::cat({x, x1, x2}, 1));
  at::Tensor x4 = conv_act(w.sub("conv4.0"), at::cat({x, x1, x2, x3}, 1));
  if (plus) x4 = x4 + x2;
  const at::Tensor x5 = conv(w.sub("conv5.0"), at::cat({x, x1, x2, x3, x4}, 1));
  return x5 * kResidualScale + x;
}

at::Tensor rrdb_block(const Weights& w, const at::Tensor& x, bool plus) {
  at::Tensor out = x;
  for (int d = 1; d <= kDenseBlocksPerBlock; ++d) {
    out = dense_block(w.sub("RDB" + std::to_string(d)), out, plus);
  }
  return out * kResidualScale + x;
}

// Pads the bottom and right edges by reflection up to a multiple of `multiple`.
at::Tensor pad_to_multiple(const at::Tensor& x, int64_t multiple) {
  const int64_t pad_h = (multiple - x.size(2) % multiple) % multiple;
  const int64_t pad_w = (multiple - x.size(3) % multiple) % multiple;
  if (pad_h == 0 && pad_w == 0) return x;
  if (x.size(2) <= pad_h || x.size(3) <= pad_w) {
    throw Error(ErrorCode::kInvalidArgument, "the image is too small for this upscale model");
  }
  return at::reflection_pad2d(x, {0, pad_w, 0, pad_h});
}

class RrdbNet : public UpscaleNetwork {
 public:
  RrdbNet(Weights weights, RrdbSizes sizes) : w_(std::move(weights)), s_(sizes) {}

  at::Tensor forward(const at::Tensor& images) const override {
    const at::Tensor x = images.to(w_.get("model.0.weight").options());
    if (s_.unshuffle == 1) return sequential(x);
    const int64_t true_scale = (int64_t{1} << s_.upsamplings) / s_.unshuffle;
    const at::Tensor unshuffled =
        at::pixel_unshuffle(pad_to_multiple(x, s_.unshuffle), s_.unshuffle);
    return sequential(unshuffled)
        .narrow(2, 0, x.size(2) * true_scale)
        .narrow(3, 0, x.size(3) * true_scale);
  }

 private:
  at::Tensor sequential(const at::Tensor& x) const {
    const at::Tensor features = conv(w_.sub("model.0"), x);
    at::Tensor trunk = features;
    for (int b = 0; b < s_.blocks; ++b) {
      trunk = rrdb_block(w_.sub("model.1.sub." + std::to_string(b)), trunk, s_.plus);
    }
    at::Tensor h = features + conv(w_.sub("model.1.sub." + std::to_string(s_.blocks)), trunk);
    for (int k = 1; k <= s_.upsamplings; ++k) {
      h = at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2});
      h = conv_act(w_.sub("model." + std::to_string(3 * k)), h);
    }
    h = conv_act(w_.sub("model." + std::to_string(3 * s_.upsamplings + 2)), h);
    return conv(w_.sub(last_conv(s_.upsamplings)), h);
  }

  Weights w_;
  RrdbSizes s_;
};

}  // namespace

bool is_rrdb_net(const TensorMap& tensors) {
  return is_old_layout(tensors) || is_new_layout(tensors);
}

UpscaleModel make_rrdb_net(TensorMap tensors) {
  TensorMap old_layout = to_old_layout(std::move(tensors));
  const Weights weights(old_layout);
  const RrdbSizes sizes = read_sizes(weights, old_layout);
  require_shapes(weights, sizes);
  const int network_scale = 1 << sizes.upsamplings;
  if (network_scale % sizes.unshuffle != 0) {
    throw Error(ErrorCode::kUnsupported,
                "ESRGAN model that unshuffles its input by " + std::to_string(sizes.unshuffle) +
                    " but upscales by only " + std::to_string(network_scale));
  }
  UpscaleModel model;
  model.architecture = "ESRGAN";
  model.scale = network_scale / static_cast<int>(sizes.unshuffle);
  model.input_channels = sizes.in_channels / (sizes.unshuffle * sizes.unshuffle);
  model.output_channels = sizes.out_channels;
  model.size_multiple = sizes.unshuffle > 1 ? kUnshuffledSizeMultiple : 1;
  model.minimum_size = std::max<int64_t>(kMinimumSize, model.size_multiple);
  model.network = std::make_shared<const RrdbNet>(weights, sizes);
  return model;
}

}  // namespace df::engine::upscale
