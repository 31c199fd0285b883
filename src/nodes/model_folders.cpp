// ComfyUI's model folder kinds, listing their files and resolving a chosen name safely.
#include "nodes/model_folders.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "core/json_text.h"

namespace df::nodes {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kWeightFiles = {".ckpt", ".pt", ".pt2", ".bin", ".pth",
                                               ".safetensors", ".pkl", ".sft"};

bool has_extension(const fs::path& path, const std::vector<std::string>& extensions) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

}  // namespace

const std::vector<ModelFolderKind>& model_folder_kinds() {
  static const std::vector<ModelFolderKind> kinds = {
      {"checkpoints", {"checkpoints"}, kWeightFiles},
      {"configs",
       {"configs"},
       {".yaml"},
       {"anything_v3.yaml", "v1-inference.yaml", "v1-inference_clip_skip_2.yaml",
        "v1-inference_clip_skip_2_fp16.yaml", "v1-inference_fp16.yaml",
        "v1-inpainting-inference.yaml", "v2-inference-v.yaml", "v2-inference-v_fp16.yaml",
        "v2-inference.yaml", "v2-inference_fp16.yaml", "v2-inpainting-inference.yaml"}},
      {"loras", {"loras"}, kWeightFiles},
      {"vae", {"vae"}, kWeightFiles},
      {"text_encoders", {"text_encoders", "clip"}, kWeightFiles},
      {"diffusion_models", {"unet", "diffusion_models"}, kWeightFiles},
      {"clip_vision", {"clip_vision"}, kWeightFiles},
      {"style_models", {"style_models"}, kWeightFiles},
      {"embeddings", {"embeddings"}, kWeightFiles},
      {"diffusers", {"diffusers"}, {}},
      {"vae_approx", {"vae_approx"}, kWeightFiles},
      {"controlnet", {"controlnet", "t2i_adapter"}, kWeightFiles},
      {"gligen", {"gligen"}, kWeightFiles},
      {"upscale_models", {"upscale_models"}, kWeightFiles},
      {"hypernetworks", {"hypernetworks"}, kWeightFiles},
      {"photomaker", {"photomaker"}, kWeightFiles},
      {"classifiers", {"classifiers"}, {}},
  };
  return kinds;
}

const ModelFolderKind* find_model_folder_kind(std::string_view name) {
  for (const auto& kind : model_folder_kinds()) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

std::vector<std::string> list_model_files(const std::string& models_root, std::string_view kind_name) {
  std::vector<std::string> names;
  const ModelFolderKind* kind = find_model_folder_kind(kind_name);
  if (kind == nullptr) return names;
  names = kind->bundled;
  for (const auto& dir : kind->dirs) {
    const fs::path root = fs::path(models_root) / dir;
    std::error_code error;
    if (!fs::is_directory(root, error)) continue;
    const auto options = fs::directory_options::skip_permission_denied |
                         fs::directory_options::follow_directory_symlink;
    for (auto it = fs::recursive_directory_iterator(root, options, error);
         !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
      if (!it->is_regular_file(error) || !has_extension(it->path(), kind->extensions)) continue;
      std::string name = it->path().lexically_relative(root).generic_string();
      if (valid_utf8(name) == name) names.push_back(std::move(name));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

const std::vector<TinyAutoencoderKind>& tiny_autoencoder_kinds() {
  static const std::vector<TinyAutoencoderKind> kinds = {{"taesd", 0.18215}, {"taesdxl", 0.13025}};
  return kinds;
}

const TinyAutoencoderKind* find_tiny_autoencoder_kind(std::string_view name) {
  for (const auto& kind : tiny_autoencoder_kinds()) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

std::string find_tiny_autoencoder_file(const std::string& models_root, std::string_view name,
                                       std::string_view part) {
  const std::string prefix = std::string(name) + "_" + std::string(part) + ".";
  for (auto& file : list_model_files(models_root, "vae_approx")) {
    if (file.starts_with(prefix)) return file;
  }
  return "";
}

std::vector<std::string> vae_loader_names(const std::string& models_root) {
  std::vector<std::string> names = list_model_files(models_root, "vae");
  for (const auto& kind : tiny_autoencoder_kinds()) {
    if (!find_tiny_autoencoder_file(models_root, kind.name, "encoder").empty() &&
        !find_tiny_autoencoder_file(models_root, kind.name, "decoder").empty()) {
      names.push_back(kind.name);
    }
  }
  return names;
}

std::vector<std::string> model_combo_names(const std::string& models_root, std::string_view kind) {
  return kind == "vae" ? vae_loader_names(models_root) : list_model_files(models_root, kind);
}

std::string resolve_model_file(const std::string& models_root, std::string_view kind_name,
                               const std::string& name) {
  const ModelFolderKind* kind = find_model_folder_kind(kind_name);
  if (kind == nullptr) {
    throw Error(ErrorCode::kInternal, "unknown model folder '" + std::string(kind_name) + "'");
  }
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "the model file name is empty");
  std::string searched;
  for (const auto& dir : kind->dirs) {
    const std::string folder = (fs::path(models_root) / dir).string();
    const std::string path = join_inside(folder, name, kind->name + " file name");
    std::error_code error;
    if (fs::is_regular_file(path, error)) return path;
    searched += (searched.empty() ? "" : ", ") + folder;
  }
  throw Error(ErrorCode::kModelNotFound,
              kind->name + " file '" + name + "' not found in " + searched);
}

}  // namespace df::nodes
