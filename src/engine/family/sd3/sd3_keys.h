// The map between the SD3 MMDiT's tensor names: Stability's original ones (used internally and by
// single files) and diffusers' SD3Transformer2DModel ones (torch-free).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/family/sd3/sd3_config.h"
#include "engine/safetensors_file.h"

namespace df::engine::sd3 {

// The prefix of the MMDiT's tensors in a single checkpoint file, which may also hold
// "text_encoders.*" and "first_stage_model.*".
inline constexpr const char* kSingleFilePrefix = "model.diffusion_model.";

// One original tensor and the diffusers tensors it is made of: their concatenation along the
// first dimension (qkv <- to_q, to_k, to_v), with the two halves swapped where `swap_halves`
// (Stability's adaLN-continuous outputs shift then scale, diffusers' scale then shift).
struct KeyRule {
  std::string original;
  std::vector<std::string> diffusers;
  bool swap_halves = false;
};

// Every rule of `config`, covering each tensor of sd3_transformer_layout(config) once.
std::vector<KeyRule> sd3_key_rules(const Sd3Config& config);

// The name without kSingleFilePrefix when `prefixed` (a single file holding more than the
// MMDiT), nullopt for another component's tensor there; the name itself otherwise.
std::optional<std::string> strip_single_file_prefix(const std::string& name, bool prefixed);

// Whether any name carries kSingleFilePrefix.
bool has_single_file_prefix(const std::vector<std::string>& names);

// The tensors renamed (and split, concatenated or half-swapped) from one naming to the other,
// in rule order. Throws Error(kCorruptFile) naming a missing, unexpected or misshapen tensor.
std::vector<RawTensor> sd3_original_to_diffusers(const Sd3Config& config,
                                                 const std::vector<RawTensor>& original);
std::vector<RawTensor> sd3_diffusers_to_original(const Sd3Config& config,
                                                 const std::vector<RawTensor>& diffusers);

}  // namespace df::engine::sd3
