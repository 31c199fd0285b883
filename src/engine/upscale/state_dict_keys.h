// Name queries the upscaler architectures share when they read a state dict.
#pragma once

#include <initializer_list>
#include <string>

#include "engine/weights.h"

namespace df::engine::upscale {

// Whether every one of `names` is a tensor of `tensors`.
bool has_all(const TensorMap& tensors, std::initializer_list<const char*> names);

// The length of the sequential module `prefix` (spandrel's get_seq_len): one more than the
// largest index i of a tensor "prefix.i.*", or 0 when there is none.
int sequence_length(const TensorMap& tensors, const std::string& prefix);

}  // namespace df::engine::upscale
