// ComfyUI's read-only information routes: node definitions (/object_info), models, system stats,
// feature flags, model metadata and previews, Dream Forge's workflow templates, and the empty
// answers for features Dream Forge does not have (embeddings, extensions, translations, custom
// node templates, subgraphs, node replacements).
#pragma once

#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/workflow_validation.h"
#include "gpu/runner_roster.h"
#include "graph/node_schema.h"
#include "http/router.h"
#include "registry/model_registry.h"

namespace df::api {

class ComfySystem {
 public:
  // `input_dir`: where LoadImage's choices come from. `feature_flags`: what GET /features answers
  // (the same flags the WebSocket sends). `runners`: this process's runners, for /system_stats.
  // `offers`: whether native runners exist and what the backends offer: /object_info and the
  // model lists are the union of every runner's.
  ComfySystem(registry::ModelRegistry& models, std::string input_dir,
              nlohmann::json feature_flags, const gpu::RunnerRoster& runners,
              const WorkflowRouter& offers);

  // GET /object_info, /object_info/{class}, /system_stats, /features, /embeddings, /extensions,
  // /i18n, /models, /models/{folder}, /experiment/models, /experiment/models/{folder},
  // /experiment/models/preview/{folder}/{path_index}/{filename}, /view_metadata/{folder},
  // /workflow_templates, /global_subgraphs, /global_subgraphs/{id}, /node_replacements (each also
  // under "/api"), /internal/folder_paths, and the template browser's /templates/ routes
  // (register_template_routes, from the installed templates folder).
  void register_routes(http::Router& router);

 private:
  nlohmann::json object_info() const;
  nlohmann::json node_info(const std::string& class_type) const;
  // The model files of `folder` (checkpoints from the model registry, the other ComfyUI model
  // folders from disk) as /experiment/models/{folder} lists them; Error(kNotFound) for a folder
  // ComfyUI does not have.
  nlohmann::json model_files(const std::string& folder) const;
  nlohmann::json model_names(const std::string& folder) const;
  // The native runners' node definitions ({} without native runners), of `only` or every class.
  nlohmann::json native_object_info(const std::optional<std::string>& only) const;
  // GET /view_metadata/{folder}?filename=: the safetensors file's metadata (404 without one).
  nlohmann::json model_metadata(const http::Request& request) const;
  // GET /experiment/models/preview/{folder}/{path_index}/{filename...}: the model's preview as
  // WebP; 400 for a path index that is not a number, 404 for one that names no folder path.
  http::Response model_preview(const http::Request& request) const;
  // <models root>: the parent of the checkpoints folder.
  std::filesystem::path models_root() const;
  // The absolute folders of a model folder kind, in path-index order.
  std::vector<std::filesystem::path> folder_dirs(const std::string& folder) const;
  nlohmann::json folder_paths(const std::string& folder) const;
  // folder_dirs(folder)[path_index]; Error(kNotFound) for an index outside them.
  std::filesystem::path folder_dir(const std::string& folder, int64_t path_index) const;

  registry::ModelRegistry& models_;
  std::string input_dir_;
  nlohmann::json feature_flags_;
  const gpu::RunnerRoster& runners_;
  const WorkflowRouter& offers_;
  graph::NodeSchemaRegistry schemas_;
};

}  // namespace df::api
