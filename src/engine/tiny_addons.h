// Tiny random-weight model add-ons (VAE, embedding, hypernetwork) for the tiny test pipelines.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/safetensors_file.h"

namespace df::engine {

// Each writer puts a .safetensors file at `path`, labelled as a test model, with weights drawn
// from `seed` (the same arguments always give the same bytes). An existing file is replaced only
// when it is such a test file (else Error(kInvalidArgument)); Error(kIo) when it cannot be
// written. Throws Error(kUnsupported) for families without a tiny pipeline.

// Writes `tensors` (labelled as a random-weight test model in the metadata) to `path`, creating
// its folder; refuses (kInvalidArgument) to replace a file that is not such a test file.
// `what` names the model in errors ("VAE", "embedding", ...).
void write_test_file(const std::string& path, const std::string& what,
                     std::vector<RawTensor> tensors, std::map<std::string, std::string> metadata);

// The LDM name of a diffusers AutoencoderKL tensor of a VAE with `num_blocks` blocks (the inverse
// of ldm_vae_key_to_diffusers).
std::string diffusers_vae_key_to_ldm(const std::string& key, size_t num_blocks);

// A standalone VAE under its original (LDM) names ("encoder.down.0.block.0.norm1.weight", 1x1
// convolution attention weights) with the tiny pipeline's VAE config, as models/vae holds them.
void write_tiny_vae(const std::string& path, Family family, uint64_t seed);
// The same for a VAE of its own `config` (the DiT families' 16-channel VAEs).
void write_tiny_vae_file(const std::string& path, const VaeConfig& config, uint64_t seed);

// A textual-inversion embedding of 2 vectors for the tiny pipeline's text encoders: one tensor
// "emb_params" [2, width] for SD1/SD2, "clip_l" and "clip_g" for SDXL.
void write_tiny_embedding(const std::string& path, Family family, uint64_t seed);

// An A1111 hypernetwork (layer structure 1, 2, 1, relu) for the tiny UNet's cross-attention
// context width, in the flattened layout Hypernetwork::load reads ("W.0.linear.0.weight", ...).
void write_tiny_hypernetwork(const std::string& path, Family family, uint64_t seed);

}  // namespace df::engine
