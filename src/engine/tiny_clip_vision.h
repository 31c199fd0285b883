// Tiny random-weight CLIP vision model (transformers layout) for image prompt tests.
#pragma once

#include <cstdint>
#include <string>

#include "engine/model_config.h"

namespace df::engine {

// A CLIPVisionModelWithProjection of 3 layers, 128 wide (2 heads), 4-pixel patches of 16x16
// images and 32-wide image embeddings (the tiny SDXL pipeline's pooled width), under transformers
// names, as models/clip_vision holds them; written like the other tiny add-ons (see
// write_tiny_vae). The family is accepted for the create-tiny interface; every family gets the
// same tower.
void write_tiny_clip_vision(const std::string& path, Family family, uint64_t seed);

// A tiny SD2.1-unCLIP-style pipeline folder: the tiny SD 2.x pipeline whose UNet takes 64-wide
// class labels (the tiny CLIP vision model's 32-wide image embeddings and their noise level
// embedding) and that tiny CLIP vision model as image_encoder/model.safetensors, written like
// write_tiny_model. Throws Error(kUnsupported) for another family than SD 2.x.
void write_tiny_unclip_model(const std::string& dir, Family family, uint64_t seed);

}  // namespace df::engine
