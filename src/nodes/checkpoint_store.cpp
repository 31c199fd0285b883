// CheckpointStore: safe name resolution, listing, and the loaders behind the model cache.
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

// The single value of a load that callers hold as it is.
template <class T>
CachedModel whole(std::shared_ptr<const T> model) {
  return {std::move(model), {}};
}

// The cache key of one kind's load.
std::string cache_key(const std::string& kind, const std::string& key) { return kind + '\n' + key; }

// A list of names as one name ("a.safetensors, b.safetensors").
std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

}  // namespace

CheckpointStore::CheckpointStore(CheckpointStoreOptions options)
    : options_(std::move(options)),
      cache_(options_.budget,
             engine::resolve_placement(options_.device, "float32", engine::Family::kSD1).device) {}

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
  auto bundle = cache_.get<engine::CheckpointBundle>("checkpoint", cache_key("checkpoint", name), name, [&] {
    engine::CheckpointLoadRequest request{resolve(name), options_.device, options_.dtype,
                                          options_.clip_vocab_dir};
    auto loaded = std::make_shared<const engine::CheckpointBundle>(engine::load_checkpoint_bundle(request));
    // MODEL, CLIP and VAE travel through graphs on their own: held there, the checkpoint is in use.
    return CachedModel{loaded, {loaded->model, loaded->clip, loaded->prompt_encoder, loaded->vae}};
  });
  identity_files_[name] = bundle->identity_file;
  return bundle;
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
  return cache_.get<engine::VaeCodec>("vae", cache_key("vae", name), name, [&] {
    if (const TinyAutoencoderKind* tiny = find_tiny_autoencoder_kind(name)) {
      return whole(engine::load_tiny_vae_codec(tiny_autoencoder_path(name, "encoder"),
                                               tiny_autoencoder_path(name, "decoder"),
                                               tiny->latent_scale, options_.device));
    }
    return whole(engine::load_vae_codec(model_file("vae", name), options_.device));
  });
}

std::shared_ptr<const engine::DiffusionModel> CheckpointStore::diffusion_model(
    const std::string& name, const std::string& weight_dtype) {
  const std::string key = cache_key("diffusion_model", name + '\n' + weight_dtype);
  return cache_.get<engine::DiffusionModel>("diffusion_model", key, name, [&] {
    const auto fp8_storage = engine::fp8_weight_storage(weight_dtype);
    return whole(engine::load_diffusion_model(model_file("diffusion_models", name), options_.device,
                                              options_.dtype, fp8_storage));
  });
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
  const std::string key = cache_key("text_encoders", text_encoder_key(names, type, device));
  return cache_.get<engine::TextConditioner>("text_encoders", key, joined(names), [&] {
    const TextEncoderPlacement placement = text_encoder_placement(names, device);
    engine::TextEncoderLoadRequest request;
    request.paths = placement.paths;
    request.type = type;
    request.device = placement.device;
    request.dtype = placement.dtype;
    request.clip_vocab_dir = options_.clip_vocab_dir;
    return whole(engine::load_text_conditioner(request));
  });
}

std::shared_ptr<const engine::PromptEncoder> CheckpointStore::prompt_encoder(
    const std::vector<std::string>& names, const std::string& type, const std::string& device) {
  const std::string key = cache_key("prompt_encoder", text_encoder_key(names, type, device));
  return cache_.get<engine::PromptEncoder>("prompt_encoder", key, joined(names), [&] {
    const TextEncoderPlacement placement = text_encoder_placement(names, device);
    return whole(engine::load_prompt_encoder(placement.paths, type, placement.device,
                                             placement.dtype, "", options_.clip_vocab_dir));
  });
}

std::shared_ptr<const engine::ClipVisionModel> CheckpointStore::clip_vision(
    const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  return cache_.get<engine::ClipVisionModel>("clip_vision", cache_key("clip_vision", path), name, [&] {
    return whole(engine::load_clip_vision(path, options_.device, options_.dtype));
  });
}

std::shared_ptr<const engine::ControlModel> CheckpointStore::controlnet(const std::string& name) {
  return cache_.get<engine::ControlModel>("controlnet", cache_key("controlnet", name), name, [&] {
    return whole(engine::load_control_model(model_file("controlnet", name), options_.device,
                                            options_.dtype));
  });
}

}  // namespace df::nodes
