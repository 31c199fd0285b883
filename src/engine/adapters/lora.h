// LoRA files as weight patches, with ComfyUI's LoraLoader semantics.
//
// How a loader node uses it (LoraLoader: model and clip; LoraLoaderModelOnly: clip = nullptr):
//
//   const LoraTargets targets = lora_targets(bundle.model.get(), bundle.clip.get());
//   const LoraPatches lora = load_lora(path, targets, strength_model, strength_clip);
//   for (const auto& key : lora.unmatched) log("lora key not loaded: " + key);
//   for (const auto& message : lora.rejected) log(message);
//   Weights unet = apply_patches(model.unet.weights(), lora.unet);
//   Weights encoder_i = apply_patches(clip.encoders()[i].model.weights(), lora.text_encoders[i]);
//
// (a DiT model: apply_patches(model.network->weights(), lora.unet) and network->with_weights)
// then builds UNet(model.unet.config(), unet) and ClipTextModel(config, encoder_i) into new
// MODEL / CLIP values. Stacked LoRAs: patch the already patched weights, or collect the patches of
// each file with append_patches and apply them once to the original weights (same result).
//
// Key formats (as ComfyUI maps them): kohya/A1111 "lora_unet_<LDM or diffusers module with _>",
// "lora_te_" (SD1/SD2), "lora_te1_"/"lora_te2_" (SDXL), diffusers/PEFT "unet.<module>",
// "text_encoder.", "text_encoder_2." (also old ".processor." names), "lycoris_", and the generic
// "diffusion_model.<LDM name>" / "text_encoders.clip_x.transformer.<name>"; tensors
// .lora_up/.lora_down/.lora_mid.weight, _lora.up/.down, .lora_B/.lora_A, .lora.up/.down,
// .lora_linear_layer.up/.down, LoHa .hada_*, LoKr .lokr_*, .alpha, .dora_scale, .diff, .diff_b,
// .w_norm, .b_norm.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/adapters/dit_lora_names.h"
#include "engine/adapters/lora_names.h"
#include "engine/adapters/weight_patch.h"
#include "engine/model_config.h"

namespace df::engine {

struct DiffusionModel;
class TextConditioner;

// Engine weight name -> its shape.
using WeightShapes = std::map<std::string, std::vector<int64_t>>;

struct LoraTextEncoderTarget {
  TextEncoderKind kind = TextEncoderKind::kClipL;
  WeightShapes weights;  // the encoder's tensors as Weights::keys() names them (ClipTextModel's)
  // Layers the checkpoint has but the engine does not compute (SD2's last OpenCLIP layer, whose
  // output SD2 never uses): LoRA tensors for them are taken without effect, as in ComfyUI.
  int uncomputed_layers = 0;
};

// The weights a LoRA may patch. A module left empty (no UNet weights, no text encoders) matches
// nothing, so a file's tensors for it are reported unmatched (LoraLoaderModelOnly's behaviour).
// For a DiT family's model, `unet` holds its network's weights (full Weights::keys() names) and
// `dit_names` their LoRA names (dit_lora_names.h); unet_config is then unused.
struct LoraTargets {
  UNetConfig unet_config;  // for the LDM names of the UNet's modules
  WeightShapes unet;       // diffusers names (the UNet's) or the DiT network's names
  DitLoraNames dit_names;  // empty for an SD model
  std::vector<LoraTextEncoderTarget> text_encoders;  // in the conditioner's encoder order
};

// The targets of a loaded MODEL and CLIP; either may be null.
LoraTargets lora_targets(const DiffusionModel* model, const TextConditioner* clip);

struct LoraPatches {
  WeightPatches unet;  // strength_model, keyed like LoraTargets::unet (the UNet or DiT network)
  std::vector<WeightPatches> text_encoders;  // strength_clip, one per target text encoder
  // File tensors that no target took, sorted: ComfyUI logs "lora key not loaded: <key>".
  std::vector<std::string> unmatched;
  // Patches that matched a weight but cannot apply to it (shape, missing bias, broken factors);
  // ComfyUI logs such an error and leaves the weight unchanged, and so do these patches (left out).
  std::vector<std::string> rejected;
};

// The patches of a LoRA file's tensors (any float dtype) for `targets`, each patch
// weight + strength * delta (strength_model for the UNet, strength_clip for text encoders; any
// sign). One patch per weight: when a file names a weight twice, the later name wins.
LoraPatches lora_patches(const TensorMap& lora, const LoraTargets& targets, double strength_model,
                         double strength_clip);

// Reads a LoRA file (safetensors or a PyTorch checkpoint, see TensorFile::open) and returns
// lora_patches of it. Errors: kModelNotFound (no such file), kUnsupported (not a weights
// extension), kUnsafeFormat (a pickle that would run code), kCorruptFile (a broken file).
LoraPatches load_lora(const std::string& path, const LoraTargets& targets, double strength_model,
                      double strength_clip);

}  // namespace df::engine
