// Reading ControlNet files: diffusers folders and single files in diffusers or original layout.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <ATen/ATen.h>

#include "engine/control/controlnet.h"
#include "engine/model_config.h"
#include "engine/tensor_file.h"
#include "engine/weights.h"

namespace df::engine {

// How a ControlNet file names its tensors.
enum class ControlNetNaming {
  kDiffusers,  // "controlnet_cond_embedding.conv_in.weight", "down_blocks.0...", ...
  kOriginal,   // "input_hint_block.0.weight", "zero_convs.0.0.weight", "input_blocks...", ...
};
struct ControlNetFileLayout {
  ControlNetNaming naming;
  std::string prefix;  // "" or "control_model." (original layout)
};
// Throws Error(kUnsupported) for Control-LoRAs, T2I adapters and files holding neither a
// ControlNet nor an adapter (naming the tensor groups found).
ControlNetFileLayout detect_controlnet_layout(const TensorFile& file);

// The family a ControlNet belongs to, from its cross-attention width (768 SD1, 1024 SD2, 2048
// SDXL); other widths (small test models): SDXL with an SDXL label embedding, else SD2 when its
// transformers project linearly, else SD1.
Family controlnet_family(const ControlNetConfig& config);

// A ControlNet's config and weights under diffusers names, floating tensors in `dtype` on the CPU.
// `difference`: the file holds a "difference" marker (its weights are offsets from a UNet's).
struct ControlNetFile {
  ControlNetConfig config;
  Family family = Family::kSD1;
  TensorMap weights;
  bool difference = false;
};
// `path` is a diffusers folder (config.json and diffusion_pytorch_model.safetensors) or a
// .safetensors file; a diffusers-named file with a config.json beside it takes that config, else
// the metadata config, else one inferred from shapes (SD1 has 8 heads, the others 64-wide heads).
// Files named "*_shuffle" or "*_shuffle_fp16" pool their residuals globally, as in ComfyUI.
// Throws Error(kModelNotFound) for a missing path, Error(kCorruptFile) for a broken file or
// weights that do not fit the config, Error(kUnsupported) as detect_controlnet_layout.
ControlNetFile read_controlnet(const std::string& path, at::ScalarType dtype);

// The ControlNet of `path` on `device` in `dtype` (names as resolve_placement takes them). With
// `difference_base` (a UNet's diffusers-named weights) a difference file's weights are added to
// the UNet's weights of the same names (ComfyUI's DiffControlNetLoader).
std::shared_ptr<const ControlNet> load_controlnet(const std::string& path,
                                                  const std::string& device,
                                                  const std::string& dtype,
                                                  const Weights* difference_base = nullptr);

// ComfyUI's load_controlnet: the T2I adapter a single file holds (load_t2i_adapter), else the
// ControlNet of `path` (load_controlnet).
std::shared_ptr<const ControlModel> load_control_model(const std::string& path,
                                                       const std::string& device,
                                                       const std::string& dtype,
                                                       const Weights* difference_base = nullptr);

}  // namespace df::engine
