// The runner's loaded models: several per process, under a host and a device memory budget,
// evicted least recently used first (gpu::ModelBudget decides), each measured when it loads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "gpu/model_budget.h"

namespace df::nodes {

// Host bytes the process holds for data: its heap in use plus the model files it keeps mapped
// (zero-copy tensors view them).
int64_t held_host_bytes();
// Bytes the accelerator's caching allocator has handed out on `device`; 0 for the CPU.
int64_t allocated_device_bytes(const c10::Device& device);

// What a load returns: the model, and the shared parts that callers may hold on their own (a
// checkpoint's MODEL, CLIP and VAE): while any of them is held elsewhere the entry is in use.
struct CachedModel {
  std::shared_ptr<const void> value;
  std::vector<std::shared_ptr<const void>> parts;
};

// One cached model as reported.
struct LoadedModel {
  std::string kind;
  std::string name;
  gpu::ModelBytes bytes;
};

class ModelCache {
 public:
  // `device`: where models compute (its allocator measures device bytes).
  ModelCache(gpu::ModelBytes limits, c10::Device device) : budget_(limits), device_(device) {}

  // The model of `key` (unique across kinds), loaded by `load` when it is not cached. A new model
  // is measured (held_host_bytes, allocated_device_bytes before and after its load) and admitted
  // under the budget, evicting the least recently used models that are not in use. A load that
  // runs out of memory is retried once after evicting every model not in use.
  template <class T>
  std::shared_ptr<const T> get(const std::string& kind, const std::string& key,
                               const std::string& name, const std::function<CachedModel()>& load) {
    return std::static_pointer_cast<const T>(get_erased(kind, key, name, load));
  }
  // Drops every model.
  void clear();
  // The cached models, most recently used first.
  std::vector<LoadedModel> loaded() const;
  gpu::ModelBytes total() const { return budget_.total(); }
  const gpu::ModelBytes& limits() const { return budget_.limits(); }
  const c10::Device& device() const { return device_; }
  // Models loaded from disk since the process started (a reload counts again).
  int64_t loads() const { return loads_; }

 private:
  struct Held {
    std::shared_ptr<const void> value;
    std::vector<std::weak_ptr<const void>> parts;
    bool in_use() const;
  };

  std::shared_ptr<const void> get_erased(const std::string& kind, const std::string& key,
                                         const std::string& name,
                                         const std::function<CachedModel()>& load);
  // Loads and measures; retries once after evicting what is not in use when memory runs out.
  CachedModel load_measured(const std::function<CachedModel()>& load, gpu::ModelBytes& bytes);
  // Evicts every model not in use; false when there was none.
  bool evict_idle();
  void update_pins();
  void evict(const std::vector<std::string>& keys);

  gpu::ModelBudget budget_;
  c10::Device device_;
  std::map<std::string, Held> held_;
  int64_t loads_ = 0;
};

}  // namespace df::nodes
