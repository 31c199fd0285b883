// ComfyUI's read-only information routes: node definitions, models, system stats, feature flags.
#include "api/comfy_system.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "api/comfy_model_files.h"
#include "api/comfy_router.h"
#include "api/comfy_system_stats.h"
#include "api/comfy_templates.h"
#include "api/runner_offers.h"
#include "api/workflow_validation.h"
#include "core/error.h"
#include "core/numbers.h"
#include "nodes/model_folders.h"
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

http::Handler json_answer(json body) {
  return [body = std::move(body)](http::Request&) { return http::Response::json(200, body); };
}

// The kind called `folder`; Error(kNotFound) for a folder ComfyUI does not have.
const nodes::ModelFolderKind& folder_kind(const std::string& folder) {
  const nodes::ModelFolderKind* kind = nodes::find_model_folder_kind(folder);
  if (kind == nullptr) throw Error(ErrorCode::kNotFound, "no model folder '" + folder + "'");
  return *kind;
}

}  // namespace

ComfySystem::ComfySystem(registry::ModelRegistry& models, std::string input_dir,
                         json feature_flags, const gpu::RunnerRoster& runners,
                         const WorkflowRouter& offers)
    : models_(models),
      input_dir_(std::move(input_dir)),
      feature_flags_(std::move(feature_flags)),
      runners_(runners),
      offers_(offers),
      schemas_(nodes::builtin_node_schemas()) {}

void ComfySystem::register_routes(http::Router& router) {
  add_comfy_route(router, "GET", "/object_info",
                  [this](http::Request&) { return http::Response::json(200, object_info()); });
  add_comfy_route(router, "GET", "/object_info/{class}", [this](http::Request& request) {
    return http::Response::json(200, node_info(request.path_params.at("class")));
  });
  add_comfy_route(router, "GET", "/system_stats", with_plain_errors([this](http::Request&) {
                    return http::Response::json(
                        200, system_stats(gpu::system_nvml().get(), runners_.all()));
                  }));
  add_comfy_route(router, "GET", "/features", json_answer(feature_flags_));
  add_comfy_route(router, "GET", "/embeddings", json_answer(json::array()));
  add_comfy_route(router, "GET", "/extensions", json_answer(json::array()));
  add_comfy_route(router, "GET", "/i18n", json_answer(json::object()));
  add_comfy_route(router, "GET", "/workflow_templates", json_answer(json::object()));
  add_comfy_route(router, "GET", "/global_subgraphs", json_answer(json::object()));
  add_comfy_route(router, "GET", "/global_subgraphs/{id}", json_answer(nullptr));
  add_comfy_route(router, "GET", "/node_replacements", json_answer(json::object()));
  register_template_routes(router, TemplateLibrary(installed_templates_dir()), schemas_);
  add_comfy_route(router, "GET", "/models", [this](http::Request&) {
    std::vector<std::string> kinds;
    for (const auto& kind : nodes::model_folder_kinds()) kinds.push_back(kind.name);
    for (const auto& status : *offers_.backends()) {  // folders only a backend has
      for (const auto& [folder, files] : status.offer.model_files) {
        if (std::find(kinds.begin(), kinds.end(), folder) == kinds.end()) kinds.push_back(folder);
      }
    }
    return http::Response::json(200, kinds);
  });
  add_comfy_route(router, "GET", "/models/{folder}",
                  with_plain_errors([this](http::Request& request) {
                    return http::Response::json(200, model_names(request.path_params.at("folder")));
                  }));
  add_comfy_route(router, "GET", "/experiment/models", [this](http::Request&) {
    json folders = json::array();
    for (const auto& kind : nodes::model_folder_kinds()) {
      folders.push_back({{"name", kind.name}, {"folders", folder_paths(kind.name)}});
    }
    return http::Response::json(200, folders);
  });
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
  router.add("GET", "/internal/folder_paths", [this](http::Request&) {
    json paths = json::object();
    for (const auto& kind : nodes::model_folder_kinds()) paths[kind.name] = folder_paths(kind.name);
    return http::Response::json(200, paths);
  });
}

json ComfySystem::native_object_info(const std::optional<std::string>& only) const {
  if (!offers_.native_runners()) return json::object();
  if (!only) return graph::object_info(schemas_, schema_context(models_, input_dir_));
  const graph::NodeSchema* schema = schemas_.find(*only);
  if (schema == nullptr) return json::object();
  return {{*only, schema->with_context(schema_context(models_, input_dir_)).to_object_info()}};
}

json ComfySystem::object_info() const {
  return union_object_info(native_object_info(std::nullopt), *offers_.backends());
}

json ComfySystem::node_info(const std::string& class_type) const {
  return union_object_info(native_object_info(class_type), *offers_.backends(), class_type);
}

fs::path ComfySystem::models_root() const {
  return fs::absolute(models_.checkpoints_dir()).parent_path();
}

std::vector<fs::path> ComfySystem::folder_dirs(const std::string& folder) const {
  if (folder == kCheckpoints) return {fs::absolute(models_.checkpoints_dir())};
  std::vector<fs::path> dirs;
  for (const auto& dir : folder_kind(folder).dirs) dirs.push_back(models_root() / dir);
  return dirs;
}

json ComfySystem::folder_paths(const std::string& folder) const {
  json paths = json::array();
  for (const auto& dir : folder_dirs(folder)) paths.push_back(dir.string());
  return paths;
}

fs::path ComfySystem::folder_dir(const std::string& folder, int64_t path_index) const {
  const std::vector<fs::path> dirs = folder_dirs(folder);
  if (path_index < 0 || path_index >= static_cast<int64_t>(dirs.size())) {
    throw Error(ErrorCode::kNotFound, "no model folder path " + std::to_string(path_index));
  }
  return dirs[static_cast<size_t>(path_index)];
}

json ComfySystem::model_names(const std::string& folder) const {
  const auto shared = offers_.backends();
  const std::vector<backends::BackendStatus>& backends = *shared;
  const bool ours = nodes::find_model_folder_kind(folder) != nullptr;
  const bool theirs = std::any_of(backends.begin(), backends.end(), [&](const auto& status) {
    return status.offer.model_files.count(folder) > 0;
  });
  if (!ours && !theirs) folder_kind(folder);  // 404: no runner has such a folder
  std::vector<std::string> names;
  if (ours && offers_.native_runners() && folder == kCheckpoints) {
    for (const Model& model : models_.available()) names.push_back(model.ckpt_name);
  } else if (ours && offers_.native_runners()) {
    names = nodes::list_model_files(models_root().string(), folder);
  }
  return union_model_names(std::move(names), backends, folder);
}

json ComfySystem::model_metadata(const http::Request& request) const {
  const std::string& folder = request.path_params.at("folder");
  folder_kind(folder);
  const auto filename = request.query.find("filename");
  if (filename == request.query.end()) throw Error(ErrorCode::kNotFound, "no filename given");
  for (const auto& dir : folder_dirs(folder)) {
    std::error_code ignored;
    if (fs::exists(dir / filename->second, ignored)) return safetensors_metadata(dir, filename->second);
  }
  return safetensors_metadata(folder_dir(folder, 0), filename->second);
}

http::Response ComfySystem::model_preview(const http::Request& request) const {
  const std::string& folder = request.path_params.at("folder");
  folder_kind(folder);
  const std::string& path_index = request.path_params.at("path_index");
  const std::optional<int64_t> index = parse_integer(path_index);
  if (!index) throw Error(ErrorCode::kBadRequest, "path index '" + path_index + "' is no number");
  const std::vector<uint8_t> webp =
      model_preview_webp(folder_dir(folder, *index), request.path_params.at("filename"));
  return http::Response::text(200, std::string(webp.begin(), webp.end()), "image/webp");
}

json ComfySystem::model_files(const std::string& folder) const {
  folder_kind(folder);
  json files = json::array();
  auto add = [&files](const std::string& name, const std::string& path, int path_index) {
    struct stat info{};
    if (::stat(path.c_str(), &info) != 0) return;  // removed since it was listed
    files.push_back({{"name", name},
                     {"pathIndex", path_index},
                     {"modified", seconds(info.st_mtim)},
                     {"created", seconds(info.st_ctim)},
                     {"size", model_size(path)}});
  };
  if (folder == kCheckpoints) {
    for (const Model& model : models_.available()) add(model.ckpt_name, model.local_path, 0);
    return files;
  }
  const std::vector<fs::path> dirs = folder_dirs(folder);
  for (const auto& name : nodes::list_model_files(models_root().string(), folder)) {
    for (size_t i = 0; i < dirs.size(); ++i) {
      std::error_code ignored;
      if (!fs::is_regular_file(dirs[i] / name, ignored)) continue;
      add(name, (dirs[i] / name).string(), static_cast<int>(i));
      break;
    }
  }
  return files;
}

}  // namespace df::api
