// Recognising and loading upscale models: spandrel's state-dict canonicalisation, then the first
// architecture whose key pattern matches.
#include "engine/upscale/upscale_model.h"

#include <algorithm>
#include <vector>

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "engine/upscale/compact_net.h"
#include "engine/upscale/rrdb_net.h"

namespace df::engine::upscale {
namespace {

bool has_prefix(const TensorMap& tensors, const std::string& prefix) {
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& entry) { return entry.first.rfind(prefix, 0) == 0; });
}

// The tensors under `prefix`, renamed without it.
TensorMap strip_prefix(TensorMap tensors, const std::string& prefix) {
  TensorMap kept;
  for (auto& [name, tensor] : tensors) {
    if (name.rfind(prefix, 0) == 0) kept.emplace(name.substr(prefix.size()), std::move(tensor));
  }
  return kept;
}

bool all_have_prefix(const TensorMap& tensors, const std::string& prefix) {
  return std::all_of(tensors.begin(), tensors.end(),
                     [&](const auto& entry) { return entry.first.rfind(prefix, 0) == 0; });
}

// A few sorted tensor names, for messages about files this engine cannot run.
std::string sample_names(const TensorMap& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : tensors) names.push_back(name);
  std::sort(names.begin(), names.end());
  std::string text;
  for (size_t i = 0; i < std::min<size_t>(names.size(), 4); ++i) {
    text += (i ? ", '" : "'") + names[i] + "'";
  }
  return names.size() > 4 ? text + ", ..." : text;
}

// The pixels to add to a side of `size` to reach `minimum` and a multiple of `multiple`.
int64_t padding_for(int64_t size, int64_t minimum, int64_t multiple) {
  const int64_t at_least = std::max(size, minimum);
  return (at_least + multiple - 1) / multiple * multiple - size;
}

// The one place an upscaler's weights file is read.
TensorMap read_upscaler_file(const std::string& path) {
  check_weights_path(path, "an upscale model (.safetensors, .pth, .pt, .ckpt, .bin)");
  const TensorFile file = TensorFile::open(path);
  return load_tensors_as(file, at::kFloat,
                         [](const std::string& name) { return std::optional(name); });
}

}  // namespace

at::Tensor UpscaleModel::forward(const at::Tensor& images) const {
  at::NoGradGuard no_grad;
  return network->forward(images);
}

at::Tensor UpscaleModel::upscale(const at::Tensor& images) const {
  const int64_t height = images.size(2), width = images.size(3);
  const int64_t pad_h = padding_for(height, minimum_size, size_multiple);
  const int64_t pad_w = padding_for(width, minimum_size, size_multiple);
  if (pad_h == 0 && pad_w == 0) return forward(images).clamp(0.0, 1.0);
  const int64_t reflect_h = std::min(pad_h, height - 1), reflect_w = std::min(pad_w, width - 1);
  const at::Tensor reflected = at::reflection_pad2d(images, {0, reflect_w, 0, reflect_h});
  const at::Tensor padded =
      at::replication_pad2d(reflected, {0, pad_w - reflect_w, 0, pad_h - reflect_h});
  return forward(padded).clamp(0.0, 1.0).narrow(2, 0, height * scale).narrow(3, 0, width * scale);
}

TensorMap canonical_upscaler_tensors(TensorMap tensors) {
  for (const char* wrapper : {"params_ema.", "params."}) {
    if (has_prefix(tensors, wrapper)) {
      tensors = strip_prefix(std::move(tensors), wrapper);
      break;
    }
  }
  for (const char* common : {"module.", "netG."}) {
    if (!tensors.empty() && all_have_prefix(tensors, common)) {
      tensors = strip_prefix(std::move(tensors), common);
    }
  }
  return tensors;
}

UpscaleModel build_upscale_model(TensorMap tensors) {
  if (is_rrdb_net(tensors)) return make_rrdb_net(std::move(tensors));
  if (is_compact_net(tensors)) return make_compact_net(std::move(tensors));
  if (tensors.empty()) {
    throw Error(ErrorCode::kCorruptFile, "the upscale model file holds no tensors");
  }
  throw Error(ErrorCode::kUnsupported,
              "unsupported upscale model architecture (tensors " + sample_names(tensors) +
                  "): supported are ESRGAN/Real-ESRGAN (RRDBNet) and RealESRGAN Compact "
                  "(SRVGGNetCompact)");
}

UpscaleModel load_upscale_model(const std::string& path, at::Device device) {
  TensorMap tensors = canonical_upscaler_tensors(read_upscaler_file(path));
  for (auto& [name, tensor] : tensors) tensor = tensor.to(device);
  return build_upscale_model(std::move(tensors));
}

}  // namespace df::engine::upscale
