// Super-resolution networks as ComfyUI's UpscaleModelLoader yields them (spandrel's single-image
// models): the architecture is recognised from the weights' names and shapes.
#pragma once

#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "engine/weights.h"

namespace df::engine::upscale {

// One network's forward pass: images [B, C_in, H, W] in [0, 1] (moved to the weights' device and
// dtype) -> [B, C_out, scale·H, scale·W] there, not clamped.
class UpscaleNetwork {
 public:
  virtual ~UpscaleNetwork() = default;
  virtual at::Tensor forward(const at::Tensor& images) const = 0;
};

// A loaded upscaler with what spandrel's ImageModelDescriptor tells about it.
struct UpscaleModel {
  std::string architecture;  // spandrel's architecture name: "ESRGAN" or "RealESRGAN Compact"
  int scale = 1;             // output size / input size
  int64_t input_channels = 3;
  int64_t output_channels = 3;
  // spandrel's size requirements: inputs narrower or shorter than `minimum_size`, or not a
  // multiple of `size_multiple`, are padded before the network runs.
  int64_t minimum_size = 0;
  int64_t size_multiple = 1;
  std::shared_ptr<const UpscaleNetwork> network;

  // The network alone on `images` [B, C_in, H, W], without autograd.
  at::Tensor forward(const at::Tensor& images) const;
  // As spandrel's descriptor call (what ComfyUI runs on each tile): the images padded to the size
  // requirements (reflected as far as the image allows, then replicated), the network's output
  // clamped to [0, 1] and the padding cropped off.
  at::Tensor upscale(const at::Tensor& images) const;
};

// The model's own tensors of a state dict as spandrel sees them: tensors stored under
// "params_ema." (preferred) or "params." lose that prefix and the rest are dropped; a "module." or
// "netG." prefix common to all names is removed.
TensorMap canonical_upscaler_tensors(TensorMap tensors);

// Recognises the architecture of canonical tensors (already on the device and in the dtype to run
// in) and builds it. Errors: kUnsupported naming what was found for an architecture this engine
// does not run; kCorruptFile for missing or mis-shaped tensors of a recognised one.
UpscaleModel build_upscale_model(TensorMap tensors);

// Reads an upscaler weights file and builds it on `device` in float32 (see build_upscale_model).
UpscaleModel load_upscale_model(const std::string& path, at::Device device);

}  // namespace df::engine::upscale
