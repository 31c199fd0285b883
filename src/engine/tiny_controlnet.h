// Tiny random-weight ControlNets matched to the tiny test pipelines' UNets.
#pragma once

#include <cstdint>
#include <string>

#include "engine/control/controlnet_config.h"
#include "engine/model_config.h"

namespace df::engine {

// The config of the tiny ControlNet of `family`: the tiny UNet's down path and a 16/16/32/32 hint
// encoder (8x downscale). Throws Error(kUnsupported) for families without a tiny pipeline.
ControlNetConfig tiny_controlnet_config(Family family);

// Writes the tiny ControlNet of `family` to `path` as a single file in the original layout under
// "control_model." (input_hint_block, zero_convs, middle_block_out, input_blocks, ...), with its
// config in the metadata, labelled as a test model; the same arguments give the same bytes. Errors
// as write_test_file.
void write_tiny_controlnet(const std::string& path, Family family, uint64_t seed);

}  // namespace df::engine
