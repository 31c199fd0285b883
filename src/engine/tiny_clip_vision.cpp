// Tiny random-weight CLIP vision model (transformers layout) for image prompt tests.
#include "engine/tiny_clip_vision.h"

#include <filesystem>
#include <vector>

#include "core/error.h"

#include "engine/tiny_addons.h"
#include "engine/tiny_model.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

constexpr int64_t kHidden = 128, kIntermediate = 256, kLayers = 3;
constexpr int64_t kPatch = 4, kImage = 16, kProjection = 32;
// Wider than the pipelines' 0.02 so that different images give clearly different embeddings.
constexpr double kStd = 0.1;

std::vector<TensorShape> clip_vision_layout() {
  const int64_t positions = (kImage / kPatch) * (kImage / kPatch) + 1;
  std::vector<TensorShape> layout = {
      {"vision_model.embeddings.class_embedding", {kHidden}},
      {"vision_model.embeddings.patch_embedding.weight", {kHidden, 3, kPatch, kPatch}},
      {"vision_model.embeddings.position_embedding.weight", {positions, kHidden}}};
  add_norm_shapes(layout, "vision_model.pre_layrnorm", kHidden);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string layer = "vision_model.encoder.layers." + std::to_string(i);
    add_norm_shapes(layout, layer + ".layer_norm1", kHidden);
    for (const char* projection : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      add_linear_shapes(layout, layer + ".self_attn." + projection, kHidden, kHidden);
    }
    add_norm_shapes(layout, layer + ".layer_norm2", kHidden);
    add_linear_shapes(layout, layer + ".mlp.fc1", kIntermediate, kHidden);
    add_linear_shapes(layout, layer + ".mlp.fc2", kHidden, kIntermediate);
  }
  add_norm_shapes(layout, "vision_model.post_layernorm", kHidden);
  layout.push_back({"visual_projection.weight", {kProjection, kHidden}});
  return layout;
}

}  // namespace

void write_tiny_clip_vision(const std::string& path, Family /*family*/, uint64_t seed) {
  write_test_file(path, "CLIP vision model", tiny_random_tensors(clip_vision_layout(), seed, kStd),
                  {{"format", "pt"}});
}

void write_tiny_unclip_model(const std::string& dir, Family family, uint64_t seed) {
  if (family != Family::kSD2) {
    throw Error(ErrorCode::kUnsupported, "a tiny unCLIP model is an SD 2.x model (--family sd2)");
  }
  PipelineConfig config = tiny_pipeline_config(family);
  config.unet.class_embed_type = "projection";
  config.unet.projection_class_embeddings_input_dim = 2 * kProjection;
  write_tiny_pipeline(dir, config, seed);
  write_tiny_clip_vision((std::filesystem::path(dir) / "image_encoder" / "model.safetensors").string(),
                         family, seed + 1);
}

}  // namespace df::engine
