// The /v1 generate job body of a plain DGX-Pixels generate request (endpoint and /v1 link alike).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "pixels/pixels_messages.h"

namespace df::pixels {

// {"type": "generate", model_id, prompt, width, height, steps, guidance = cfg_scale,
// count = batch_size}, with negative_prompt when not empty, seed when given and loras (strengths
// 1) for `lora`. animation_frames and tileset_grid are not part of it (they make workflow jobs).
nlohmann::json generate_job_body(const GenerateRequest& request, const std::string& model_id);

}  // namespace df::pixels
