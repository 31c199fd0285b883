// Loading an SD model (diffusers folder or single-file safetensors) into configs and weights.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/weight_layout.h"
#include "engine/weights.h"

namespace df::engine {

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;  // floating weights are converted to it while loading
  at::Device device = at::kCPU;
  // A folder with the CLIP vocab.json/merges.txt, used as the tokenizer of single-file checkpoints
  // (which carry none).
  std::string clip_vocab_dir;
};

struct LoadedModel {
  PipelineConfig config;
  Weights unet;                             // diffusers UNet2DConditionModel names
  Weights vae;                              // diffusers AutoencoderKL names
  std::vector<Weights> text_encoders;       // transformers names ("text_model.*"), config order
  std::vector<std::string> tokenizer_dirs;  // one per text encoder
  // The padding token each text encoder's prompts need: "<|endoftext|>" for OpenAI CLIP-L, "!" for
  // the OpenCLIP encoders (SD2, SDXL's second). A tokenizer folder of a single-file checkpoint may
  // say otherwise; this value wins.
  std::vector<std::string> pad_tokens;
  std::string name;    // file name without extension, or folder name
  // The file whose sha256 identifies the model (the single file, or the folder's UNet weights,
  // the index for shards). Hashing gigabytes is left to whoever needs the digest.
  std::string identity_file;
};

// Loads `path`: a folder with model_index.json (diffusers layout, .safetensors or .bin weights) or a
// single-file checkpoint (.safetensors, or a PyTorch .ckpt/.pt/.pth/.bin read by TensorFile).
// Errors: kModelNotFound (no such path), kUnsafeFormat (a pickle that would run code),
// kUnsupported (a layout or family this engine does not know), kCorruptFile (broken files,
// missing or mis-shaped tensors, bad configs).
LoadedModel load_model(const std::string& path, const LoadOptions& options);

// Every tensor `layout` lists must be in `tensors` with its shape (Error(kCorruptFile) naming it)
// and nothing else (Error(kUnsupported)); `what` names the component in the messages.
void check_tensor_layout(const TensorMap& tensors, const std::vector<TensorShape>& layout,
                         const std::string& what);

// Throws Error(kUnsupported) saying `expected` unless the extension is one of ComfyUI's weights
// extensions (.safetensors, .sft, .ckpt, .pt, .pth, .bin, .pkl), which TensorFile::open reads.
void check_weights_path(const std::string& path, const std::string& expected);

}  // namespace df::engine
