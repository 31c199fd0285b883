// The models found in the checkpoints folder: what each is, and the parameters a job may set.
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"

namespace df::registry {

// The file a downloaded model's folder carries to describe it: the registry entry as JSON
// (model_to_json) with local_path relative to that folder ("." for a diffusers folder, the file
// name for a single file). The catalog fills in what the weights say (family, schema, ...).
inline constexpr const char* kModelDescriptorFile = "dreamforge-model.json";

// JSON Schema (2020-12) of a generate job on a model of `family`, with defaults and bounds.
nlohmann::json generate_parameters_schema(const std::string& family, int native_resolution);
// Its "loras" property (every family's): up to 8 {name, strength_model, strength_clip}.
nlohmann::json generate_loras_schema();

class ModelCatalog {
 public:
  // `checkpoints_dir`: the folder the runner loads checkpoints from (<models root>/checkpoints).
  explicit ModelCatalog(std::string checkpoints_dir);
  // The models in the folder, sorted by id: diffusers folders, single .safetensors files, and
  // folders with a model descriptor (downloaded models, whose entry keeps the descriptor's source
  // and files). Entries that cannot be read are skipped.
  std::vector<Model> list() const;
  // The entry named `id` in the folder (no paths), described; nullopt when it is not a model.
  std::optional<Model> find(const std::string& id) const;
  const std::string& checkpoints_dir() const { return checkpoints_dir_; }

 private:
  // A model described once and reused until its files change (describing reads configs and
  // tensor headers; job creation asks for the model every time).
  struct CachedModel {
    std::filesystem::file_time_type stamp;
    std::optional<Model> info;
  };
  std::optional<Model> describe_cached(const std::filesystem::path& path) const;

  std::string checkpoints_dir_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, CachedModel> cache_;
};

}  // namespace df::registry
