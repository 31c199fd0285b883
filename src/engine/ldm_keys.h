// Single-file (original/LDM) SD checkpoints: family, configs from shapes, diffusers names.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/tensor_file.h"
#include "engine/weights.h"

namespace df::engine {

// Metadata keys under which a single file may carry its components' diffusers config.json (and
// scheduler_config.json) as JSON text; when present they are used instead of inferred configs
// (shapes cannot tell the attention head count of models with heads other than 64 wide).
inline constexpr const char* kUNetConfigMetadata = "dreamforge.unet_config";
inline constexpr const char* kVaeConfigMetadata = "dreamforge.vae_config";
inline constexpr const char* kTextEncoderConfigMetadata = "dreamforge.text_encoder_config";
inline constexpr const char* kTextEncoder2ConfigMetadata = "dreamforge.text_encoder_2_config";
inline constexpr const char* kSchedulerConfigMetadata = "dreamforge.scheduler_config";

// The family of a single-file checkpoint, from which text encoders it carries. Throws
// Error(kUnsupported) naming the tensor groups found when it is no SD1/SD2/SDXL checkpoint.
Family detect_single_file_family(const TensorFile& file);

// The full pipeline config of a single-file checkpoint: configs from metadata where present, else
// inferred from shapes (spec rules: SD1 has 8 heads, SD2/SDXL 64-wide heads; CLIP heads are 64
// wide). Prediction: a `v_pred` tensor, else the metadata scheduler config, else for SD2 the
// norm-bias heuristic. Throws Error(kUnsupported) when a needed tensor is missing or shapes do
// not fit the rules.
PipelineConfig infer_single_file_config(const TensorFile& file);

// The weights of each component under diffusers/transformers names, text encoders in
// config.text_encoders order.
struct SingleFileWeights {
  TensorMap unet;
  TensorMap vae;
  std::vector<TensorMap> text_encoders;
};

// Loads and converts every component (floating tensors in `dtype`, on the CPU). Tensors outside
// the components (EMA copies, schedule buffers, markers) are skipped; a tensor inside a component
// that has no diffusers counterpart throws Error(kUnsupported).
SingleFileWeights load_single_file_weights(const TensorFile& file,
                                           const PipelineConfig& config, at::ScalarType dtype);

// A VAE stored on its own (ComfyUI's models/vae): LDM names ("encoder.down.0.block.0...") or
// diffusers names ("encoder.down_blocks.0.resnets.0..."), bare or under "first_stage_model." or
// "vae.". The config is inferred from shapes; weights come back under diffusers names.
struct StandaloneVae {
  VaeConfig config;
  TensorMap weights;
};
// Throws Error(kUnsupported) naming the tensor groups found when the file holds no VAE.
StandaloneVae load_standalone_vae(const TensorFile& file, at::ScalarType dtype);

// Shape inference for components stored on their own (UNETLoader, CLIPLoader), with the same
// rules as for whole checkpoints. `prefix` is what the component's names start with ("" for bare
// names). Throw Error(kUnsupported) like infer_single_file_config.
// An LDM-named UNet ("input_blocks...").
UNetConfig infer_ldm_unet_config(const TensorFile& file, const std::string& prefix,
                                 Family family);
// ComfyUI's SD2 v-prediction heuristic on the norm bias tensor `bias` of the UNet's last
// transformer block: epsilon for other families or when the file lacks the tensor.
Prediction prediction_from_norm_bias(const TensorFile& file, Family family,
                                     const std::string& bias);
// A transformers-named CLIP text encoder (with or without "text_model."), quick GELU, no projection.
ClipTextConfig infer_clip_text_config(const TensorFile& file, const std::string& prefix);
// An OpenCLIP text tower ("transformer.resblocks..."); SD2 drops the last layer and the projection.
ClipTextConfig infer_open_clip_text_config(const TensorFile& file, const std::string& prefix,
                                           Family family);

// Name conversions, exposed for tests. Each takes the name without the component prefix and
// returns nullopt when the name has no diffusers counterpart.
// LDM UNet ("input_blocks.1.0.in_layers.0.weight") -> diffusers
// ("down_blocks.0.resnets.0.norm1.weight").
std::optional<std::string> ldm_unet_key_to_diffusers(const std::string& key, int layers_per_block);
// LDM VAE -> diffusers; decoder up blocks are numbered in reverse, so the block count is needed.
std::optional<std::string> ldm_vae_key_to_diffusers(const std::string& key, int num_blocks);
// transformers CLIP text names with or without the "text_model." prefix -> with it.
std::string hf_clip_key(const std::string& key);
// OpenCLIP text tower -> transformers CLIP names. The fused "attn.in_proj_{weight,bias}" map to
// "self_attn.in_proj_{weight,bias}" (split into q/k/v by split_open_clip_tensors) and
// "text_projection" to "text_projection.weight" (still to be transposed).
std::optional<std::string> open_clip_key_to_hf(const std::string& key);
// Finishes an OpenCLIP encoder converted by open_clip_key_to_hf: splits the fused attention
// projections into q/k/v and transposes text_projection ([D,P] used as x@P) into a Linear weight.
void split_open_clip_tensors(TensorMap& tensors);
// The VAE mid attention of LDM files uses 1x1 convolutions: squeezes those weights to Linear.
void squeeze_vae_attention_weights(TensorMap& tensors);

}  // namespace df::engine
