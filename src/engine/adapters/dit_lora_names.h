// The names LoRA files give the weights of a DiT network (FLUX.1, SD3, Z-Image), as ComfyUI maps
// them, including diffusers names whose weights are row blocks of a fused engine weight
// (torch-free).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/family/flux/flux_config.h"
#include "engine/family/sd3/sd3_config.h"
#include "engine/family/zimage/zimage_config.h"
#include "engine/model_config.h"

namespace df::engine {

// `rows` rows of a diffusers tensor, from `source_row` on, are the engine tensor's rows from
// `target_row` on.
struct RowPiece {
  int64_t target_row = 0;
  int64_t source_row = 0;
  int64_t rows = 0;
};

// One run of rows shared by an engine tensor (the family's original naming, as the network's
// Weights hold it) and a diffusers tensor.
struct DiffusersLink {
  std::string engine;
  std::string diffusers;
  RowPiece piece;
};

// The links of every tensor of a family's network.
std::vector<DiffusersLink> flux_diffusers_links(const flux::FluxConfig& config);
std::vector<DiffusersLink> sd3_diffusers_links(const sd3::Sd3Config& config);
std::vector<DiffusersLink> zimage_diffusers_links(const zimage::ZImageConfig& config);

// What one LoRA module name patches: engine weight `key`, whole (no pieces) or in the row pieces
// of a diffusers weight of `source_rows` rows that the file's difference has the shape of (a
// fused qkv's to_q block, swapped halves of a final modulation). A bias patch of the module goes
// to the same rows of the key's bias.
struct DitLoraTarget {
  std::string key;
  std::vector<RowPiece> pieces;
  int64_t source_rows = 0;
};

// LoRA module name (no ".weight" and no tensor suffix) -> its target.
using DitLoraNames = std::map<std::string, DitLoraTarget>;

// Every name a LoRA of `family` may use for the weights of `engine_keys` (the network's tensors),
// as ComfyUI's model_lora_keys_unet gives them:
//   every family: "lora_unet_<engine module with _>" and "diffusion_model.<engine module>" for
//     .weight tensors, "diffusion_model.<engine name>" for the others;
//   FLUX.1: "transformer.<diffusers module>", "lycoris_<..._>", "lora_transformer_<..._>";
//   SD3: "transformer.", "base_model.model.", "lora_transformer_", "lycoris_";
//   Z-Image: "diffusion_model.<diffusers module>", "transformer.", "lycoris_".
// A later name (the diffusers ones) replaces an equal earlier one, as in ComfyUI's key map.
DitLoraNames dit_lora_names(Family family, const std::vector<std::string>& engine_keys,
                            const std::vector<DiffusersLink>& links);

}  // namespace df::engine
