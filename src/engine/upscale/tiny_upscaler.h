// A tiny random-weight ESRGAN upscaler for tests (`dreamforge model create-tiny --kind upscaler`).
#pragma once

#include <cstdint>
#include <string>

#include "engine/model_config.h"

namespace df::engine {

// Writes a ×4 RRDBNet (16 features, one RRDB block, spandrel's growth of 32 channels) in the old
// ESRGAN key layout ("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight", ...) to `path`,
// labelled as a test model, with weights drawn from `seed`. Upscalers belong to no model family:
// `family` is ignored. Errors as write_test_file's.
void write_tiny_upscaler(const std::string& path, Family family, uint64_t seed);

}  // namespace df::engine
