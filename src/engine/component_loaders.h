// UNETLoader, CLIPLoader and DualCLIPLoader: a diffusion model or CLIP text encoders loaded from
// weights files of their own (ComfyUI's models/diffusion_models and models/text_encoders).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/checkpoint_bundle.h"
#include "engine/component_detection.h"
#include "engine/tensor_file.h"

namespace df::engine {

// A UNet stored alone, its weights under diffusers names.
struct StandaloneUNet {
  Family family;
  UNetConfig config;
  NoiseScheduleConfig schedule;  // the family's; prediction from the file (see below)
  TensorMap weights;
};

// Reads a UNet under LDM names (bare or under "model.diffusion_model.", so a whole checkpoint
// works too) or diffusers names. Configs come from the engine's metadata keys where present
// (dreamforge.unet_config, dreamforge.scheduler_config), else from shapes (SDXL's time ids embed
// 256 wide). Prediction: a "v_pred" tensor, else the stored scheduler config, else ComfyUI's SD2
// norm-bias heuristic, else epsilon. Throws Error(kUnsupported) for files that hold no UNet this
// engine knows, Error(kCorruptFile) for missing or mis-shaped tensors.
StandaloneUNet load_standalone_unet(const TensorFile& file, at::ScalarType dtype);

// UNETLoader's MODEL: the UNet file at `path` placed on `device` in `dtype` (see
// resolve_placement), with its family's noise schedule and latent scale; with `fp8_storage`
// (fp8_weight_storage of UNETLoader's weight_dtype) its matrix weights are kept in that fp8 dtype
// and upcast at use, as they are without it for a file of quantized (scaled fp8) weights.
std::shared_ptr<const DiffusionModel> load_diffusion_model(
    const std::string& path, const std::string& device, const std::string& dtype,
    std::optional<at::ScalarType> fp8_storage = std::nullopt);

// A CLIP text encoder stored alone, its weights under transformers names ("text_model.*",
// "text_projection.weight").
struct StandaloneTextEncoder {
  TextEncoderKind kind;
  ClipTextConfig config;
  TensorMap weights;
};

// Reads a CLIP-L, CLIP-H or CLIP-G text encoder under transformers names (with or without
// "text_model.") or OpenCLIP names. CLIP-H runs without its last layer, as SD2 never uses it;
// only CLIP-G keeps a text projection. The config comes from "dreamforge.text_encoder_config"
// where present, else from shapes. Errors as load_standalone_unet.
StandaloneTextEncoder load_standalone_text_encoder(const TensorFile& file,
                                                   at::ScalarType dtype);

struct TextEncoderLoadRequest {
  std::vector<std::string> paths;  // one (CLIPLoader) or two (DualCLIPLoader)
  std::string type;                // the node's "type" input
  std::string device = "auto";
  std::string dtype = "auto";
  std::string clip_vocab_dir;  // the standard CLIP vocabulary: files carry no tokenizer
};

// CLIPLoader's / DualCLIPLoader's CLIP. One file of type "stable_diffusion": CLIP-L gives SD1's
// conditioner, CLIP-H SD2's, CLIP-G the SDXL refiner's (as ComfyUI). Two files of type "sdxl": a
// CLIP-L and a CLIP-G, in either order. Other types, counts or pairs: Error(kUnsupported) naming
// them; no vocabulary, or one whose special tokens the encoder does not embed:
// Error(kInvalidArgument).
std::shared_ptr<const TextConditioner> load_text_conditioner(const TextEncoderLoadRequest& request);

}  // namespace df::engine
