// The models installed under the models root: what each is, and the parameters a job may set.
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::registry {

struct ModelInfo {
  std::string id;      // folder or file name under the checkpoints folder (the runner's ckpt_name)
  std::string name;
  std::string kind = "checkpoint";
  std::string family;  // sd1 | sd2 | sdxl | sdxl_refiner
  std::string format;  // diffusers | safetensors
  std::string path;
  bool test_model = false;  // a random-weight model from `dreamforge model create-tiny`
  int native_resolution = 512;
  std::vector<std::string> capabilities;  // txt2img, img2img
  nlohmann::json parameters_schema;       // JSON Schema of a generate job's parameters
  nlohmann::json to_json() const;
};

// JSON Schema (2020-12) of a generate job on a model of `family`, with defaults and bounds.
nlohmann::json generate_parameters_schema(const std::string& family, int native_resolution);

class ModelCatalog {
 public:
  // `checkpoints_dir`: the folder the runner loads checkpoints from (<models root>/checkpoints).
  explicit ModelCatalog(std::string checkpoints_dir);
  // Installed models, sorted by id; entries that cannot be read are skipped.
  std::vector<ModelInfo> list() const;
  std::optional<ModelInfo> find(const std::string& id) const;
  const std::string& checkpoints_dir() const { return checkpoints_dir_; }

 private:
  // A model described once and reused until its files change (describing reads configs and
  // tensor headers; job creation asks for the model every time).
  struct CachedModel {
    std::filesystem::file_time_type stamp;
    std::optional<ModelInfo> info;
  };
  std::optional<ModelInfo> describe_cached(const std::filesystem::path& path) const;

  std::string checkpoints_dir_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, CachedModel> cache_;
};

}  // namespace df::registry
