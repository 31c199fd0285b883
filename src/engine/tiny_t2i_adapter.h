// Tiny random-weight T2I adapters matched to the tiny test pipelines' UNets.
#pragma once

#include <cstdint>
#include <string>

#include "engine/model_config.h"

namespace df::engine {

// Writes the tiny T2I adapter of `family` to `path` in the original layout ("conv_in",
// "body.N.{in_conv,block1,block2}"): stages as wide as the tiny UNet's levels, two residual blocks
// each with 1x1 second convolutions, an RGB hint (8x unshuffle, SDXL's variant 16x), labelled as a
// test model; the same arguments give the same bytes. Errors as write_test_file.
void write_tiny_t2i_adapter(const std::string& path, Family family, uint64_t seed);

}  // namespace df::engine
