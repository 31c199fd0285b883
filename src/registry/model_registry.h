// The model registry: the models table, kept in step with what the checkpoints folder holds.
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "registry/model_catalog.h"
#include "store/store.h"

namespace df::registry {

// Whose files the registry vouches for.
enum class RegistryScope {
  // An embedded database on this machine: an entry whose files are gone is not offered.
  kThisMachine,
  // A database several machines share (API processes without models, workers with them): each
  // machine registers what it holds and none withdraws what it does not hold itself.
  kShared,
};

// kShared for a PostgreSQL URL, kThisMachine for the embedded SQLite database.
RegistryScope registry_scope_for(const std::string& database_url);

class ModelRegistry {
 public:
  // `checkpoints_dir`: <models root>/checkpoints, where downloads land and the runner loads from.
  ModelRegistry(store::Store& store, std::string checkpoints_dir, RegistryScope scope);

  // Registers what the folder holds (models copied in by hand, test models, downloaded folders
  // with their descriptors), refreshes changed entries, and (kThisMachine) marks entries whose
  // files are gone as not installed. Returns a warning for each entry that was marked installed
  // and whose files are missing.
  std::vector<std::string> sync();

  // Enabled, installed models (kThisMachine: whose files are in place), sorted by id: what
  // /v1/models lists, jobs may use and ComfyUI's checkpoint lists show. Syncs first when the
  // folder changed.
  std::vector<Model> available();
  // The entry `id` in any state (synced first when the folder changed); nullopt when unknown.
  std::optional<Model> find(const std::string& id);
  // Every entry, installed or not, enabled or not.
  std::vector<Model> all();

  // Records a model whose files were just put in place (a finished download): its descriptor is
  // written into the model's folder and the entry upserted. `model.local_path` is absolute.
  void add_installed(const Model& model);
  // Enables or disables an entry; throws Error(kNotFound) for an unknown id.
  void set_enabled(const std::string& id, bool enabled);
  // Forgets the entry (its files are the caller's); false when it was not registered.
  bool remove(const std::string& id);

  const std::string& checkpoints_dir() const { return catalog_.checkpoints_dir(); }

 private:
  void sync_if_folder_changed();

  store::Store& store_;
  ModelCatalog catalog_;
  RegistryScope scope_;
  std::mutex sync_mutex_;
  std::optional<std::filesystem::file_time_type> synced_stamp_;
};

}  // namespace df::registry
