// A tiny random-weight FLUX.1 model (dev or schnell) as ComfyUI's split files, for tests without downloads.
#pragma once

#include <cstdint>
#include <string>

namespace df::engine::flux {

// The file names of ComfyUI's FLUX.1 example workflows.
inline constexpr const char* kDevModelFile = "flux1-dev.safetensors";
inline constexpr const char* kSchnellModelFile = "flux1-schnell.safetensors";
inline constexpr const char* kClipLFile = "clip_l.safetensors";
inline constexpr const char* kT5File = "t5xxl_fp16.safetensors";
inline constexpr const char* kVaeFile = "ae.safetensors";

// Writes a tiny FLUX.1 model drawn from `seed` into the models root `models_dir`:
// diffusion_models/flux1-dev.safetensors (`dev`: with guidance_in) or flux1-schnell.safetensors
// (BFL naming, tiny_flux_config), text_encoders/clip_l.safetensors (transformers "text_model.*"
// naming, hidden size = the transformer's vec_in_dim, its config in the file's metadata) with its
// vocabulary in text_encoders/clip_l.tokenizer/, text_encoders/t5xxl_fp16.safetensors
// (transformers T5EncoderModel naming, d_model = context_in_dim) with its SentencePiece tokenizer
// in text_encoders/t5xxl_fp16.tokenizer/, and vae/ae.safetensors (16 channels, original naming).
// Files are labelled as test models; the same seed gives the same bytes. Errors as
// write_test_file. Returns models_dir.
std::string write_tiny_flux_files(const std::string& models_dir, bool dev, uint64_t seed);

}  // namespace df::engine::flux
