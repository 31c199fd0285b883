// ComfyUI's read-only information routes: node definitions, models, system stats, feature flags.
#include "api/comfy_system.h"

#include <sys/stat.h>

#include <filesystem>
#include <optional>

#include "api/comfy_model_files.h"
#include "api/comfy_router.h"
#include "api/comfy_system_stats.h"
#include "api/workflow_validation.h"
#include "core/error.h"
#include "core/numbers.h"
#include "nodes/packs/node_packs.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kCheckpoints = "checkpoints";

double seconds(const timespec& time) {
  return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_nsec) / 1e9;
}

// The bytes of a model: its file, or all files of a model folder (diffusers layout).
int64_t model_size(const fs::path& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) return static_cast<int64_t>(fs::file_size(path, error));
  int64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(path, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_regular_file(error)) total += static_cast<int64_t>(it->file_size(error));
  }
  return total;
}

// ComfyUI's {"folder": [paths]} shape for the one model folder.
json checkpoint_folders(registry::ModelRegistry& models) {
  return json::array({fs::absolute(models.checkpoints_dir()).string()});
}

http::Handler json_answer(json body) {
  return [body = std::move(body)](http::Request&) { return http::Response::json(200, body); };
}

void check_model_folder(const std::string& folder) {
  if (folder != kCheckpoints) {
    throw Error(ErrorCode::kNotFound, "no model folder '" + folder + "'");
  }
}

}  // namespace

ComfySystem::ComfySystem(registry::ModelRegistry& models, std::string input_dir,
                         json feature_flags)
    : models_(models),
      input_dir_(std::move(input_dir)),
      feature_flags_(std::move(feature_flags)),
      schemas_(nodes::builtin_node_schemas()) {}

void ComfySystem::register_routes(http::Router& router) {
  add_comfy_route(router, "GET", "/object_info",
                  [this](http::Request&) { return http::Response::json(200, object_info()); });
  add_comfy_route(router, "GET", "/object_info/{class}", [this](http::Request& request) {
    return http::Response::json(200, node_info(request.path_params.at("class")));
  });
  add_comfy_route(router, "GET", "/system_stats", with_plain_errors([](http::Request&) {
                    return http::Response::json(200, system_stats());
                  }));
  add_comfy_route(router, "GET", "/features", json_answer(feature_flags_));
  add_comfy_route(router, "GET", "/embeddings", json_answer(json::array()));
  add_comfy_route(router, "GET", "/extensions", json_answer(json::array()));
  add_comfy_route(router, "GET", "/i18n", json_answer(json::object()));
  add_comfy_route(router, "GET", "/workflow_templates", json_answer(json::object()));
  add_comfy_route(router, "GET", "/global_subgraphs", json_answer(json::object()));
  add_comfy_route(router, "GET", "/global_subgraphs/{id}", json_answer(nullptr));
  add_comfy_route(router, "GET", "/node_replacements", json_answer(json::object()));
  // The frontend's index of workflow templates: Dream Forge ships none (its own workflows are in
  // the user's workflow library).
  router.add("GET", "/templates/index.json", json_answer(json::array()));
  router.add("GET", "/templates/index_logo.json", json_answer(json::object()));
  add_comfy_route(router, "GET", "/models", json_answer(json::array({kCheckpoints})));
  add_comfy_route(router, "GET", "/models/{folder}",
                  with_plain_errors([this](http::Request& request) {
                    return http::Response::json(200, model_names(request.path_params.at("folder")));
                  }));
  add_comfy_route(router, "GET", "/experiment/models",
                  json_answer(json::array(
                      {{{"name", kCheckpoints}, {"folders", checkpoint_folders(models_)}}})));
  add_comfy_route(router, "GET", "/experiment/models/{folder}",
                  with_plain_errors([this](http::Request& request) {
                    return http::Response::json(200, model_files(request.path_params.at("folder")));
                  }));
  add_comfy_route(router, "GET", "/experiment/models/preview/{folder}/{path_index}/{filename...}",
                  with_plain_errors(
                      [this](http::Request& request) { return model_preview(request); }));
  add_comfy_route(router, "GET", "/view_metadata/{folder}",
                  with_plain_errors([this](http::Request& request) {
                    return http::Response::json(200, model_metadata(request));
                  }));
  // ComfyUI's internal routes have no "/api" twin.
  router.add("GET", "/internal/folder_paths",
             json_answer({{kCheckpoints, checkpoint_folders(models_)}}));
}

json ComfySystem::object_info() const {
  return graph::object_info(schemas_, schema_context(models_, input_dir_));
}

json ComfySystem::node_info(const std::string& class_type) const {
  const graph::NodeSchema* schema = schemas_.find(class_type);
  if (schema == nullptr) return json::object();
  return {{class_type, schema->with_context(schema_context(models_, input_dir_)).to_object_info()}};
}

json ComfySystem::model_names(const std::string& folder) const {
  check_model_folder(folder);
  json names = json::array();
  for (const Model& model : models_.available()) names.push_back(model.ckpt_name);
  return names;
}

json ComfySystem::model_metadata(const http::Request& request) const {
  check_model_folder(request.path_params.at("folder"));
  const auto filename = request.query.find("filename");
  if (filename == request.query.end()) throw Error(ErrorCode::kNotFound, "no filename given");
  return safetensors_metadata(models_.checkpoints_dir(), filename->second);
}

http::Response ComfySystem::model_preview(const http::Request& request) const {
  check_model_folder(request.path_params.at("folder"));
  const std::string& path_index = request.path_params.at("path_index");
  const std::optional<int64_t> index = parse_integer(path_index);
  if (!index) throw Error(ErrorCode::kBadRequest, "path index '" + path_index + "' is no number");
  if (*index != 0) throw Error(ErrorCode::kNotFound, "no model folder path " + path_index);
  const std::vector<uint8_t> webp =
      model_preview_webp(models_.checkpoints_dir(), request.path_params.at("filename"));
  return http::Response::text(200, std::string(webp.begin(), webp.end()), "image/webp");
}

json ComfySystem::model_files(const std::string& folder) const {
  check_model_folder(folder);
  json files = json::array();
  for (const Model& model : models_.available()) {
    struct stat info{};
    if (::stat(model.local_path.c_str(), &info) != 0) continue;  // removed since it was listed
    files.push_back({{"name", model.ckpt_name},
                     {"pathIndex", 0},
                     {"modified", seconds(info.st_mtim)},
                     {"created", seconds(info.st_ctim)},
                     {"size", model_size(model.local_path)}});
  }
  return files;
}

}  // namespace df::api
