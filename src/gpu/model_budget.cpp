// ModelBudget: least-recently-used admission and eviction under host and device byte limits.
#include "gpu/model_budget.h"

#include <algorithm>

namespace df::gpu {
namespace {

bool fits(const ModelBytes& used, const ModelBytes& need, const ModelBytes& limits) {
  return used.host_bytes + need.host_bytes <= limits.host_bytes &&
         used.device_bytes + need.device_bytes <= limits.device_bytes;
}

}  // namespace

bool ModelBudget::contains(const std::string& key) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const BudgetEntry& e) { return e.key == key; });
}

bool ModelBudget::touch(const std::string& key) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const BudgetEntry& e) { return e.key == key; });
  if (it == entries_.end()) return false;
  std::rotate(it, it + 1, entries_.end());
  return true;
}

void ModelBudget::set_pinned(const std::string& key, bool pinned) {
  for (auto& entry : entries_) {
    if (entry.key == key) entry.pinned = pinned;
  }
}

std::vector<std::string> ModelBudget::evictions_for(const ModelBytes& need) const {
  std::vector<std::string> evicted;
  ModelBytes used = total();
  for (const auto& entry : entries_) {
    if (fits(used, need, limits_)) break;
    if (entry.pinned) continue;
    evicted.push_back(entry.key);
    used.host_bytes -= entry.bytes.host_bytes;
    used.device_bytes -= entry.bytes.device_bytes;
  }
  return evicted;
}

std::vector<std::string> ModelBudget::admit(BudgetEntry entry) {
  remove(entry.key);
  std::vector<std::string> evicted = evictions_for(entry.bytes);
  for (const auto& key : evicted) remove(key);
  entries_.push_back(std::move(entry));
  return evicted;
}

void ModelBudget::remove(const std::string& key) {
  std::erase_if(entries_, [&](const BudgetEntry& e) { return e.key == key; });
}

ModelBytes ModelBudget::total() const {
  ModelBytes sum;
  for (const auto& entry : entries_) {
    sum.host_bytes += entry.bytes.host_bytes;
    sum.device_bytes += entry.bytes.device_bytes;
  }
  return sum;
}

}  // namespace df::gpu
