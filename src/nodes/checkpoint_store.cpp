// CheckpointStore: safe name resolution, listing, and a one-model cache.
#include "nodes/checkpoint_store.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/file_hash_cache.h"
#include "core/files.h"
#include "engine/component_loaders.h"
#include "engine/control/controlnet_loader.h"
#include "engine/family/dit_text_encoders.h"
#include "engine/fp8_weights.h"
#include "nodes/model_folders.h"

namespace df::nodes {
namespace {

namespace fs = std::filesystem;

bool is_diffusers_folder(const fs::path& p) { return fs::is_regular_file(p / "model_index.json"); }

// Pickle formats are listed too: choosing one gets a clear unsafe_format refusal at load time.
bool is_checkpoint_file(const fs::path& p) {
  static const std::set<std::string> extensions = {".safetensors", ".ckpt", ".pt", ".pth", ".bin"};
  return extensions.count(p.extension().string()) > 0;
}

}  // namespace

std::string CheckpointStore::resolve(const std::string& name) const {
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "checkpoint name is empty");
  const std::string full = join_inside(options_.models_dir, name, "checkpoint name");
  if (!fs::exists(full)) {
    throw Error(ErrorCode::kModelNotFound,
                "checkpoint '" + name + "' not found in " + options_.models_dir);
  }
  return full;
}

std::vector<std::string> CheckpointStore::list() const {
  std::vector<std::string> names;
  const fs::path root(options_.models_dir);
  if (!fs::is_directory(root)) return names;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    const fs::path& p = it->path();
    if (it->is_directory() && is_diffusers_folder(p)) {
      names.push_back(p.lexically_relative(root).generic_string());
      it.disable_recursion_pending();  // a model's own component files are not checkpoints
    } else if (it->is_regular_file() && is_checkpoint_file(p)) {
      names.push_back(p.lexically_relative(root).generic_string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::shared_ptr<const engine::CheckpointBundle> CheckpointStore::get(const std::string& name) {
  if (loaded_ && loaded_name_ == name) return loaded_;
  const std::string path = resolve(name);
  loaded_.reset();  // free the previous model before loading the next one
  engine::CheckpointLoadRequest request{path, options_.device, options_.dtype, options_.clip_vocab_dir};
  loaded_ = std::make_shared<const engine::CheckpointBundle>(engine::load_checkpoint_bundle(request));
  loaded_name_ = name;
  identity_files_[name] = loaded_->identity_file;
  return loaded_;
}

std::string CheckpointStore::hash_of(const std::string& name) const {
  auto it = identity_files_.find(name);
  return it == identity_files_.end() ? "" : cached_file_sha256(it->second);
}

std::string CheckpointStore::models_root() const {
  if (!options_.models_root.empty()) return options_.models_root;
  fs::path checkpoints = fs::path(options_.models_dir).lexically_normal();
  if (!checkpoints.has_filename()) checkpoints = checkpoints.parent_path();  // a trailing '/'
  return checkpoints.parent_path().string();
}

std::string CheckpointStore::model_file(const std::string& kind, const std::string& name) const {
  return resolve_model_file(models_root(), kind, name);
}

engine::EmbeddingFinder CheckpointStore::embedding_finder() const {
  std::vector<std::string> dirs;
  for (const auto& dir : find_model_folder_kind("embeddings")->dirs) {
    dirs.push_back((fs::path(models_root()) / dir).string());
  }
  return [dirs](const std::string& name) { return engine::find_embedding_file(dirs, name); };
}

std::string CheckpointStore::tiny_autoencoder_path(const std::string& name,
                                                   const std::string& part) const {
  const std::string file = find_tiny_autoencoder_file(models_root(), name, part);
  if (file.empty()) {
    throw Error(ErrorCode::kModelNotFound,
                "VAE '" + name + "' needs a " + name + "_" + part + " file in " + models_root() +
                    "/vae_approx");
  }
  return model_file("vae_approx", file);
}

std::shared_ptr<const engine::VaeCodec> CheckpointStore::vae(const std::string& name) {
  if (loaded_vae_ && loaded_vae_name_ == name) return loaded_vae_;
  if (const TinyAutoencoderKind* tiny = find_tiny_autoencoder_kind(name)) {
    const std::string encoder = tiny_autoencoder_path(name, "encoder");
    const std::string decoder = tiny_autoencoder_path(name, "decoder");
    loaded_vae_.reset();
    loaded_vae_ =
        engine::load_tiny_vae_codec(encoder, decoder, tiny->latent_scale, options_.device);
  } else {
    const std::string path = model_file("vae", name);
    loaded_vae_.reset();
    loaded_vae_ = engine::load_vae_codec(path, options_.device);
  }
  loaded_vae_name_ = name;
  return loaded_vae_;
}

std::shared_ptr<const engine::DiffusionModel> CheckpointStore::diffusion_model(
    const std::string& name, const std::string& weight_dtype) {
  const std::string key = name + '\n' + weight_dtype;
  if (loaded_unet_ && loaded_unet_name_ == key) return loaded_unet_;
  const auto fp8_storage = engine::fp8_weight_storage(weight_dtype);
  const std::string path = model_file("diffusion_models", name);
  loaded_unet_.reset();
  loaded_unet_ = engine::load_diffusion_model(path, options_.device, options_.dtype, fp8_storage);
  loaded_unet_name_ = key;
  return loaded_unet_;
}

namespace {

// The cache key of a text encoder load.
std::string text_encoder_key(const std::vector<std::string>& names, const std::string& type,
                             const std::string& device) {
  std::string key = type + '\n' + device;
  for (const auto& name : names) key += '\n' + name;
  return key;
}

}  // namespace

CheckpointStore::TextEncoderPlacement CheckpointStore::text_encoder_placement(
    const std::vector<std::string>& names, const std::string& device) const {
  TextEncoderPlacement placement;
  for (const auto& name : names) placement.paths.push_back(model_file("text_encoders", name));
  const bool cpu = device == "cpu";
  placement.device = cpu ? "cpu" : options_.device;
  placement.dtype = cpu ? "float32" : options_.dtype;
  return placement;
}

std::shared_ptr<const engine::TextConditioner> CheckpointStore::text_encoders(
    const std::vector<std::string>& names, const std::string& type, const std::string& device) {
  const std::string key = text_encoder_key(names, type, device);
  if (loaded_text_ && loaded_text_key_ == key) return loaded_text_;
  loaded_text_.reset();
  const TextEncoderPlacement placement = text_encoder_placement(names, device);
  engine::TextEncoderLoadRequest request;
  request.paths = placement.paths;
  request.type = type;
  request.device = placement.device;
  request.dtype = placement.dtype;
  request.clip_vocab_dir = options_.clip_vocab_dir;
  loaded_text_ = engine::load_text_conditioner(request);
  loaded_text_key_ = key;
  return loaded_text_;
}

std::shared_ptr<const engine::PromptEncoder> CheckpointStore::prompt_encoder(
    const std::vector<std::string>& names, const std::string& type, const std::string& device) {
  const std::string key = text_encoder_key(names, type, device);
  if (loaded_prompt_encoder_ && loaded_prompt_encoder_key_ == key) return loaded_prompt_encoder_;
  loaded_prompt_encoder_.reset();
  const TextEncoderPlacement placement = text_encoder_placement(names, device);
  loaded_prompt_encoder_ = engine::load_prompt_encoder(placement.paths, type, placement.device,
                                                       placement.dtype, "",
                                                       options_.clip_vocab_dir);
  loaded_prompt_encoder_key_ = key;
  return loaded_prompt_encoder_;
}

std::shared_ptr<const engine::ClipVisionModel> CheckpointStore::clip_vision(
    const std::string& path) {
  if (loaded_clip_vision_ && loaded_clip_vision_path_ == path) return loaded_clip_vision_;
  loaded_clip_vision_.reset();
  loaded_clip_vision_ = engine::load_clip_vision(path, options_.device, options_.dtype);
  loaded_clip_vision_path_ = path;
  return loaded_clip_vision_;
}

std::shared_ptr<const engine::ControlModel> CheckpointStore::controlnet(const std::string& name) {
  if (loaded_controlnet_ && loaded_controlnet_name_ == name) return loaded_controlnet_;
  const std::string path = model_file("controlnet", name);
  loaded_controlnet_.reset();
  loaded_controlnet_ = engine::load_control_model(path, options_.device, options_.dtype);
  loaded_controlnet_name_ = name;
  return loaded_controlnet_;
}

void CheckpointStore::clear() {
  loaded_controlnet_.reset();
  loaded_controlnet_name_.clear();
  loaded_clip_vision_.reset();
  loaded_clip_vision_path_.clear();
  loaded_unet_.reset();
  loaded_unet_name_.clear();
  loaded_text_.reset();
  loaded_text_key_.clear();
  loaded_.reset();
  loaded_name_.clear();
  loaded_vae_.reset();
  loaded_vae_name_.clear();
}

}  // namespace df::nodes
