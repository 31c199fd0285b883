// ComfyUI's model folders below the models root (vae, loras, embeddings, ...): which folders
// each kind reads, which files it offers, and safe lookup of a chosen name (no libtorch).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace df::nodes {

// One of ComfyUI's model folder kinds ("vae", "loras", "diffusion_models", ...): the folders
// below the models root it reads (ComfyUI's legacy names too, e.g. "unet" for
// "diffusion_models") and the file extensions it lists.
struct ModelFolderKind {
  std::string name;
  std::vector<std::string> dirs;
  std::vector<std::string> extensions;
  // Names offered even without a file: the model configs ComfyUI ships in models/configs, which
  // workflows name in CheckpointLoader (Dream Forge detects the model and needs none of them).
  std::vector<std::string> bundled = {};
};

// Every kind ComfyUI's /models lists, checkpoints first, in ComfyUI's order.
const std::vector<ModelFolderKind>& model_folder_kinds();
// The kind called `name`, or nullptr.
const ModelFolderKind* find_model_folder_kind(std::string_view name);

// The files of `kind` below `models_root` (relative to their folder with '/') and the kind's
// bundled names, sorted and without duplicates; names that are not UTF-8 are left out (they
// cannot be chosen in JSON). An unknown kind or missing folders list nothing but bundled names.
std::vector<std::string> list_model_files(const std::string& models_root, std::string_view kind);

// A Tiny AutoEncoder VAELoader offers by name when models/vae_approx holds both of its halves,
// "<name>_encoder.*" and "<name>_decoder.*", with the latent scale of the VAE it imitates.
struct TinyAutoencoderKind {
  std::string name;
  double latent_scale;
};

// ComfyUI's: "taesd" (SD 1.x/2.x) and "taesdxl" (SDXL), in that order.
const std::vector<TinyAutoencoderKind>& tiny_autoencoder_kinds();
// The kind called `name`, or nullptr.
const TinyAutoencoderKind* find_tiny_autoencoder_kind(std::string_view name);

// The first vae_approx file (in listing order) whose name starts with "<name>_<part>." (part
// "encoder" or "decoder"), or "" when there is none.
std::string find_tiny_autoencoder_file(const std::string& models_root, std::string_view name,
                                       std::string_view part);

// VAELoader's choices: the vae files, then each tiny autoencoder with both halves in vae_approx.
std::vector<std::string> vae_loader_names(const std::string& models_root);

// The names a model-file combo over `kind` offers: vae_loader_names for "vae", else
// list_model_files.
std::vector<std::string> model_combo_names(const std::string& models_root, std::string_view kind);

// The absolute path of `name` in the first folder of `kind` that holds it. Throws
// Error(kInvalidArgument) for an empty name or one that leaves the folder, Error(kModelNotFound)
// naming the folders when no folder holds it.
std::string resolve_model_file(const std::string& models_root, std::string_view kind,
                               const std::string& name);

}  // namespace df::nodes
