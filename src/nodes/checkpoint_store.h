// Finds checkpoints and the other model files (VAEs, LoRAs, ...) under the models root, and keeps
// the models it loaded in a ModelCache under the runner's memory budgets.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint_bundle.h"
#include "engine/clip_vision.h"
#include "engine/control/control_model.h"
#include "engine/embedding_files.h"
#include "engine/text/prompt_encoder.h"
#include "gpu/model_budget.h"
#include "nodes/model_cache.h"

namespace df::nodes {

struct CheckpointStoreOptions {
  std::string models_dir;   // the checkpoints folder
  std::string models_root;  // the other model folders' parent ("": models_dir's parent)
  std::string device = "auto";
  std::string dtype = "auto";
  std::string clip_vocab_dir;  // tokenizer files for single-file checkpoints
  // What the loaded models may hold in host and in device memory (ModelCache evicts beyond it).
  gpu::ModelBytes budget = {INT64_MAX, INT64_MAX};
};

class CheckpointStore {
 public:
  explicit CheckpointStore(CheckpointStoreOptions options);

  // Loads `name` (a path relative to the models folder) or returns the cached one.
  std::shared_ptr<const engine::CheckpointBundle> get(const std::string& name);
  // Names CheckpointLoaderSimple offers: diffusers folders and checkpoint files, sorted.
  std::vector<std::string> list() const;
  // Absolute path of `name`; throws kInvalidArgument for names that leave the models folder and
  // kModelNotFound for names that do not exist.
  std::string resolve(const std::string& name) const;
  // The sha256 of a checkpoint loaded earlier in this process ("" if never loaded); computed on
  // first use and remembered across processes (see core/file_hash_cache.h).
  std::string hash_of(const std::string& name) const;
  // The VAE file `name` of models/vae, or the tiny autoencoder "taesd"/"taesdxl" from its files in
  // models/vae_approx, loaded on the runner's device (cached).
  std::shared_ptr<const engine::VaeCodec> vae(const std::string& name);
  // UNETLoader: the UNet file `name` of models/diffusion_models on the runner's device and dtype,
  // its matrix weights stored as UNETLoader's `weight_dtype` says (engine::fp8_weight_storage;
  // cached).
  std::shared_ptr<const engine::DiffusionModel> diffusion_model(
      const std::string& name, const std::string& weight_dtype = "default");
  // CLIPLoader / DualCLIPLoader: the text encoder files `names` of models/text_encoders as the
  // CLIP of `type` (see engine::load_text_conditioner), on the runner's device or, for device
  // "cpu", on the CPU in float32 (cached).
  std::shared_ptr<const engine::TextConditioner> text_encoders(const std::vector<std::string>& names,
                                                               const std::string& type,
                                                               const std::string& device);
  // The same loaders for a DiT family's text side (engine::dit_text_family says which types):
  // the prompt encoder of the files `names` (cached).
  std::shared_ptr<const engine::PromptEncoder> prompt_encoder(const std::vector<std::string>& names,
                                                              const std::string& type,
                                                              const std::string& device);
  // CLIPVisionLoader / unCLIPCheckpointLoader: the CLIP vision model of the file at `path` (a
  // clip_vision file or an unCLIP checkpoint) on the runner's device and dtype (cached).
  std::shared_ptr<const engine::ClipVisionModel> clip_vision(const std::string& path);
  // ControlNetLoader / T2IAdapterLoader: the ControlNet or T2I adapter `name` of the controlnet
  // folders on the runner's device and dtype (cached).
  std::shared_ptr<const engine::ControlModel> controlnet(const std::string& name);
  // The absolute path of `name` in ComfyUI's model folder `kind` ("loras", "embeddings", ...);
  // see nodes::resolve_model_file for the errors.
  std::string model_file(const std::string& kind, const std::string& name) const;
  std::string models_root() const;
  // Finds the files of prompts' "embedding:NAME" in the embeddings folders (see
  // engine::find_embedding_file).
  engine::EmbeddingFinder embedding_finder() const;
  // Drops every cached model.
  void clear() { cache_.clear(); }
  const CheckpointStoreOptions& options() const { return options_; }
  const ModelCache& cache() const { return cache_; }

 private:
  // The absolute path of the tiny autoencoder `name`'s "encoder" or "decoder" file.
  std::string tiny_autoencoder_path(const std::string& name, const std::string& part) const;

  CheckpointStoreOptions options_;
  ModelCache cache_;
  std::map<std::string, std::string> identity_files_;  // checkpoint name -> file to hash
  // The paths, device and dtype a text encoder load of these loader inputs uses.
  struct TextEncoderPlacement {
    std::vector<std::string> paths;
    std::string device, dtype;
  };
  TextEncoderPlacement text_encoder_placement(const std::vector<std::string>& names,
                                              const std::string& device) const;
};

}  // namespace df::nodes
