// CLIP vision transformer (transformers CLIPVisionModelWithProjection) and ComfyUI's image
// preprocessing for it, loaded from transformers or open_clip weight layouts.
#pragma once

#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "engine/tensor_file.h"
#include "engine/weights.h"

namespace df::engine {

// Sizes of a CLIP vision tower, read from its weights (see detect_clip_vision_config).
struct ClipVisionConfig {
  int64_t hidden_size = 1024;
  int64_t intermediate_size = 4096;
  int64_t num_attention_heads = 16;
  int64_t num_hidden_layers = 24;
  int64_t image_size = 224;
  int64_t patch_size = 14;
  int64_t projection_dim = 768;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";
};

// What ComfyUI's CLIPVisionEncode returns (CLIP_VISION_OUTPUT), float32 on the CPU.
struct ClipVisionOutput {
  at::Tensor last_hidden_state;          // [B, 1 + patches, hidden]: the last layer's output
  at::Tensor penultimate_hidden_states;  // [B, 1 + patches, hidden]: the layer before it
  at::Tensor image_embeds;               // [B, projection_dim]: projected, post-LN class token
};

// The config of transformers-named weights ("vision_model.embeddings.class_embedding", ...,
// "visual_projection.weight"): sizes from shapes, 16 heads for the 1280/1664-wide ViT-H and
// ViT-bigG and 64-wide heads otherwise, GELU for the 32- and 48-layer open_clip towers (ViT-H,
// ViT-bigG) and quick GELU for the others (OpenAI's ViT-L), as ComfyUI's config choice does.
// Throws Error(kCorruptFile) for weights that are no CLIP vision tower.
ClipVisionConfig detect_clip_vision_config(const Weights& weights);

// Whether a file's tensor names hold a CLIP vision tower, and where: "" for transformers names,
// else the open_clip prefix ("visual.", "embedder.model.visual." in SD2.1 unCLIP checkpoints).
// nullopt when it holds none.
std::optional<std::string> find_clip_vision_prefix(const TensorFile& file);

// The tower's tensors of `file` under transformers names, converted to `dtype`: open_clip's
// conv1 / positional_embedding / ln_pre / resblocks (merged in_proj split into q, k, v) / ln_post /
// proj (transposed) are renamed. Throws Error(kCorruptFile) when the file holds no tower.
TensorMap read_clip_vision_weights(const TensorFile& file, at::ScalarType dtype);

// ComfyUI's clip_preprocess: images [B, H, W, C>=3] in [0, 1] -> normalised pixels
// [B, 3, size, size]. An image not already size x size is resized with antialiased bicubic
// interpolation, its short side to `size` and then centre-cropped (`center_crop`) or squashed to
// size x size; pixels are rounded to 8 bits and normalised with CLIP's mean and deviation.
at::Tensor clip_preprocess(const at::Tensor& images, int64_t size, bool center_crop);

// The vision tower; runs in the dtype and on the device of its weights.
class ClipVisionModel {
 public:
  ClipVisionModel(ClipVisionConfig config, Weights weights);

  // pixel_values [B, 3, image_size, image_size] (already normalised) -> outputs in the weights'
  // dtype and device.
  ClipVisionOutput forward(const at::Tensor& pixel_values) const;
  // CLIPVisionEncode: preprocesses `images` (see clip_preprocess) and returns float32 CPU outputs.
  ClipVisionOutput encode_image(const at::Tensor& images, bool center_crop) const;

  const ClipVisionConfig& config() const { return config_; }

 private:
  at::Tensor embeddings(const at::Tensor& pixel_values) const;

  ClipVisionConfig config_;
  Weights weights_;  // transformers names
};

// Where a checkpoint keeps its CLIP vision model (unCLIPCheckpointLoader): a diffusers folder's
// image_encoder/model.safetensors, a single file itself. Throws Error(kInvalidArgument) for a
// folder without one.
std::string checkpoint_clip_vision_file(const std::string& checkpoint_path);

// CLIPVisionLoader: the tower of a weights file (safetensors or a PyTorch pickle, read without
// running code; transformers or open_clip layout) on
// `device` in `dtype` (see resolve_placement).
std::shared_ptr<const ClipVisionModel> load_clip_vision(const std::string& path,
                                                        const std::string& device,
                                                        const std::string& dtype);

}  // namespace df::engine
