// Which loaded models to evict, least recently used first, to keep a runner under its RAM and VRAM budgets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace df::gpu {

// Bytes a model holds in host memory and in device memory (or a budget of them).
struct ModelBytes {
  int64_t host_bytes = 0;
  int64_t device_bytes = 0;
};

// One loaded model as the budget sees it.
struct BudgetEntry {
  std::string key;   // unique among the entries (the cache's lookup key)
  std::string kind;  // "checkpoint", "vae", "diffusion_model", ...
  std::string name;  // what the user named (a file or folder)
  ModelBytes bytes;
  bool pinned = false;  // in use right now: never evicted
};

// The entries of a model cache in least-recently-used order under a budget. Admitting an entry
// first evicts the least recently used unpinned entries until it fits beside the rest; an entry
// bigger than the whole budget is still admitted, alone with the pinned ones.
class ModelBudget {
 public:
  explicit ModelBudget(ModelBytes limits) : limits_(limits) {}

  const ModelBytes& limits() const { return limits_; }
  bool contains(const std::string& key) const;
  // Marks `key` the most recently used; false if it is not an entry.
  bool touch(const std::string& key);
  // Sets whether `key` is in use (pinned entries are never evicted).
  void set_pinned(const std::string& key, bool pinned);
  // The keys to evict, least recently used first, so that `need` fits beside the entries left.
  std::vector<std::string> evictions_for(const ModelBytes& need) const;
  // Adds `entry` as the most recently used after removing evictions_for(entry.bytes); returns the
  // keys removed. An entry of the same key is replaced.
  std::vector<std::string> admit(BudgetEntry entry);
  void remove(const std::string& key);
  void clear() { entries_.clear(); }
  // The sum over the entries.
  ModelBytes total() const;
  // The entries, least recently used first.
  const std::vector<BudgetEntry>& entries() const { return entries_; }

 private:
  ModelBytes limits_;
  std::vector<BudgetEntry> entries_;  // least recently used first
};

}  // namespace df::gpu
