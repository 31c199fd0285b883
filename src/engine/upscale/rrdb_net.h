// ESRGAN's RRDBNet (ESRGAN, BSRGAN, Real-ESRGAN, ESRGAN+) in the old sequential key layout
// ("model.0", "model.1.sub.N.RDB1.conv1.0", ...) or the newer one ("conv_first",
// "body.N.rdb1.conv1", "conv_body", "conv_up1", "conv_hr", "conv_last").
#pragma once

#include "engine/upscale/upscale_model.h"

namespace df::engine::upscale {

// Whether canonical tensors carry an RRDBNet in one of the layouts spandrel recognises.
bool is_rrdb_net(const TensorMap& tensors);

// The network with its sizes read from the tensors: features and input/output channels from the
// first and last convolutions, blocks from the trunk, the scale from the number of ×2 upsampling
// convolutions (×1, ×2, ×4, ×8), and Real-ESRGAN's pixel-unshuffled input (x2plus, x1) when the
// input channels are 4 or 16 times the output channels. kCorruptFile for missing or mis-shaped
// tensors, kUnsupported for another number of upsampling layers.
UpscaleModel make_rrdb_net(TensorMap tensors);

}  // namespace df::engine::upscale
