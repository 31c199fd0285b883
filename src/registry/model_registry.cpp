// The model registry: the models table, kept in step with what the checkpoints folder holds.
#include "registry/model_registry.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"
#include "core/files.h"

namespace df::registry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The record without the fields the store keeps for itself, for telling a changed entry apart.
json comparable(const Model& model) {
  json record = model_to_json(model);
  record.erase("created_ms");
  record.erase("updated_ms");
  return record;
}

constexpr std::chrono::seconds kSettleTime{2};

bool files_in_place(const Model& model) {
  std::error_code error;
  return !model.local_path.empty() && fs::exists(model.local_path, error);
}

std::optional<fs::file_time_type> folder_stamp(const std::string& folder) {
  std::error_code error;
  const auto stamp = fs::last_write_time(folder, error);
  if (error) return std::nullopt;
  return stamp;
}

// The descriptor form of `model`: its weights named relative to `folder`.
json descriptor_of(const Model& model, const fs::path& folder) {
  json record = model_to_json(model);
  const fs::path relative = fs::path(model.local_path).lexically_relative(folder);
  record["local_path"] = relative.empty() ? "." : relative.generic_string();
  record.erase("parameters_schema");  // the catalog derives it from the weights
  return record;
}

}  // namespace

RegistryScope registry_scope_for(const std::string& database_url) {
  return store::is_postgres_url(database_url) ? RegistryScope::kShared
                                                : RegistryScope::kThisMachine;
}

ModelRegistry::ModelRegistry(store::Store& store, std::string checkpoints_dir, RegistryScope scope)
    : store_(store), catalog_(std::move(checkpoints_dir)), scope_(scope) {}

std::vector<std::string> ModelRegistry::sync() {
  std::lock_guard lock(sync_mutex_);
  synced_stamp_ = folder_stamp(checkpoints_dir());
  std::map<std::string, Model> registered;
  for (auto& model : store_.list_models()) registered.emplace(model.id, std::move(model));

  for (Model& found : catalog_.list()) {
    const auto entry = registered.find(found.id);
    if (entry != registered.end()) {
      found.enabled = entry->second.enabled;
      found.created_ms = entry->second.created_ms;
      const bool changed = comparable(found) != comparable(entry->second);
      registered.erase(entry);
      if (!changed) continue;
    }
    store_.upsert_model(found);
  }

  std::vector<std::string> warnings;
  if (scope_ == RegistryScope::kShared) return warnings;  // other machines may hold the files
  for (auto& [id, model] : registered) {
    if (!model.installed || model.kind != "checkpoints" || files_in_place(model)) continue;
    warnings.push_back("model '" + id + "' is registered as installed but its files are missing (" +
                       model.local_path + "); it is not offered until they are back");
    model.installed = false;
    store_.upsert_model(model);
  }
  return warnings;
}

void ModelRegistry::sync_if_folder_changed() {
  {
    std::lock_guard lock(sync_mutex_);
    const auto stamp = folder_stamp(checkpoints_dir());
    // File times are coarse: a folder changed in the last moments may change again within the
    // same tick, so it is looked at again until it has been quiet for a while.
    const bool settled = stamp && fs::file_time_type::clock::now() - *stamp > kSettleTime;
    if (synced_stamp_ && synced_stamp_ == stamp && settled) return;
  }
  sync();
}

std::vector<Model> ModelRegistry::available() {
  sync_if_folder_changed();
  std::vector<Model> models;
  for (auto& model : store_.list_models()) {
    const bool in_place = scope_ == RegistryScope::kShared || files_in_place(model);
    if (model.kind == "checkpoints" && model.installed && model.enabled && in_place) {
      models.push_back(std::move(model));
    }
  }
  return models;
}

std::optional<Model> ModelRegistry::find(const std::string& id) {
  sync_if_folder_changed();
  return store_.get_model(id);
}

std::vector<Model> ModelRegistry::all() {
  sync_if_folder_changed();
  return store_.list_models();
}

void ModelRegistry::add_installed(const Model& model) {
  const fs::path local_path(model.local_path);
  const fs::path folder = fs::is_directory(local_path) ? local_path : local_path.parent_path();
  const std::string text = descriptor_of(model, folder).dump(2);
  write_file_atomically((folder / kModelDescriptorFile).string(),
                        std::vector<uint8_t>(text.begin(), text.end()));
  Model entry = model;
  entry.installed = true;
  if (model.kind == "checkpoints") {
    // The weights' own description (family, schema, ckpt_name), as the folder scan will see it.
    auto described = catalog_.find(folder.filename().string());
    if (!described) {
      throw Error(ErrorCode::kInvalidArgument,
                  "'" + model.local_path + "' is not a checkpoint Dream Forge can load");
    }
    described->enabled = model.enabled;
    entry = *described;
  }
  store_.upsert_model(entry);
}

void ModelRegistry::set_enabled(const std::string& id, bool enabled) {
  auto model = find(id);
  if (!model) throw Error(ErrorCode::kNotFound, "no model '" + id + "' in the registry");
  model->enabled = enabled;
  store_.upsert_model(*model);
}

bool ModelRegistry::remove(const std::string& id) { return store_.delete_model(id); }

}  // namespace df::registry
