// A tiny random-weight Z-Image model as ComfyUI's split files, for tests without downloads.
#pragma once

#include <cstdint>
#include <string>

#include "engine/family/zimage/zimage_config.h"

namespace df::engine::zimage {

// The file names of the split files in the web frontend's default Z-Image Turbo workflow.
inline constexpr const char* kDiffusionModelFile = "z_image_turbo_bf16.safetensors";
inline constexpr const char* kTextEncoderFile = "qwen_3_4b.safetensors";
inline constexpr const char* kVaeFile = "ae.safetensors";

// The tiny transformer of the split files: tiny_zimage_config reading the tiny Qwen3's states.
ZImageConfig tiny_zimage_split_config();

// Writes a tiny Z-Image model drawn from `seed` into the models root `models_dir` under the
// default workflow's names: diffusion_models/z_image_turbo_bf16.safetensors (ComfyUI naming),
// text_encoders/qwen_3_4b.safetensors (transformers naming) with its tokenizer in
// text_encoders/qwen_3_4b.tokenizer/, and vae/ae.safetensors (16 channels, original naming).
// Files are labelled as test models; the same seed gives the same bytes. Errors as
// write_test_file. Returns models_dir.
std::string write_tiny_zimage_files(const std::string& models_dir, uint64_t seed);

}  // namespace df::engine::zimage
