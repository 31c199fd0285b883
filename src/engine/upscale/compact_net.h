// Real-ESRGAN's compact network (SRVGGNetCompact, spandrel's "RealESRGAN Compact"): "body.N"
// 3×3 convolutions with PReLU activations, a pixel shuffle by the scale, plus the
// nearest-upsampled input.
#pragma once

#include "engine/upscale/upscale_model.h"

namespace df::engine::upscale {

// Whether canonical tensors look like a compact network (spandrel: "body.0.weight" and
// "body.1.weight").
bool is_compact_net(const TensorMap& tensors);

// The network with its features and convolutions counted from the tensors; the scale and output
// channels from the last convolution's scale²·channels outputs (spandrel's choice: the input
// channels, else 3, 4 or 1). kCorruptFile for missing or mis-shaped tensors.
UpscaleModel make_compact_net(TensorMap tensors);

}  // namespace df::engine::upscale
