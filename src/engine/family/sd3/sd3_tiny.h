// A tiny random-weight SD3.5 model as ComfyUI's split files, for tests without downloads.
#pragma once

#include <cstdint>
#include <string>

#include "engine/family/sd3/sd3_config.h"

namespace df::engine::sd3 {

// The file names of ComfyUI's SD3.5 example workflows (the VAE as a file of its own).
inline constexpr const char* kDiffusionModelFile = "sd3.5_medium.safetensors";
inline constexpr const char* kClipLFile = "clip_l.safetensors";
inline constexpr const char* kClipGFile = "clip_g.safetensors";
inline constexpr const char* kT5File = "t5xxl_fp16.safetensors";
inline constexpr const char* kVaeFile = "sd3_vae.safetensors";

// The tiny MMDiT of the split files: tiny_sd3_config with SD3.5's qk norm and SD3.5 Medium's
// second attention in block 0, reading SD3's 4096-wide joint context and the pooled vector of the
// tiny CLIP-L and CLIP-G (32 + 32).
Sd3Config tiny_sd3_split_config();

// Writes a tiny SD3.5 model drawn from `seed` into the models root `models_dir`:
// diffusion_models/sd3.5_medium.safetensors (Stability's MMDiT names), text_encoders/
// clip_l.safetensors and clip_g.safetensors (transformers "text_model.*" names, CLIP-G with its
// text_projection, configs in the files' metadata) with their vocabulary in NAME.tokenizer/,
// text_encoders/t5xxl_fp16.safetensors (transformers T5EncoderModel names, 4096 wide) with its
// SentencePiece tokenizer in t5xxl_fp16.tokenizer/, and vae/sd3_vae.safetensors (16 channels,
// SD3's scale and shift, original names). Files are labelled as test models; the same seed gives
// the same bytes. Errors as write_test_file. Returns models_dir.
std::string write_tiny_sd3_files(const std::string& models_dir, uint64_t seed);

}  // namespace df::engine::sd3
