// ModelCache: type-erased models kept under gpu::ModelBudget, measured from the memory their load kept.
#include "nodes/model_cache.h"

#include <malloc.h>

#include <algorithm>
#include <fstream>
#include <new>
#include <set>
#include <sstream>

#include <ATen/DeviceAccelerator.h>
#include <c10/util/Exception.h>

namespace df::nodes {
namespace {

// Model files that loads map (safetensors views); other mapped files (libraries) do not count.
bool is_model_file(const std::string& path) {
  static const std::set<std::string> extensions = {".safetensors", ".sft", ".ckpt", ".pt",
                                                   ".pth", ".bin", ".gguf"};
  const auto dot = path.rfind('.');
  return dot != std::string::npos && extensions.count(path.substr(dot)) > 0;
}

// Bytes of the model files mapped into this process (/proc/self/maps).
int64_t mapped_model_file_bytes() {
  std::ifstream maps("/proc/self/maps");
  int64_t bytes = 0;
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode, path;
    fields >> range >> perms >> offset >> dev >> inode >> path;
    if (inode == "0" || !is_model_file(path)) continue;
    const auto dash = range.find('-');
    bytes += static_cast<int64_t>(std::stoull(range.substr(dash + 1), nullptr, 16) -
                                  std::stoull(range.substr(0, dash), nullptr, 16));
  }
  return bytes;
}

bool is_accelerator(const c10::Device& device) {
  const auto accelerator = at::accelerator::getAccelerator(false);
  return accelerator && device.type() == *accelerator;
}

gpu::ModelBytes held_bytes(const c10::Device& device) {
  return {held_host_bytes(), allocated_device_bytes(device)};
}

}  // namespace

int64_t held_host_bytes() {
  const struct mallinfo2 heap = mallinfo2();
  return static_cast<int64_t>(heap.uordblks + heap.hblkhd) + mapped_model_file_bytes();
}

int64_t allocated_device_bytes(const c10::Device& device) {
  if (!is_accelerator(device)) return 0;
  const auto stats = at::accelerator::getDeviceStats(device.has_index() ? device.index() : 0);
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].current;
}

bool ModelCache::Held::in_use() const {
  if (value.use_count() > 1) return true;
  return std::any_of(parts.begin(), parts.end(),
                     [](const std::weak_ptr<const void>& part) { return part.use_count() > 1; });
}

std::shared_ptr<const void> ModelCache::get_erased(const std::string& kind, const std::string& key,
                                                   const std::string& name,
                                                   const std::function<CachedModel()>& load) {
  if (auto it = held_.find(key); it != held_.end()) {
    budget_.touch(key);
    return it->second.value;
  }
  gpu::ModelBytes bytes;
  CachedModel model = load_measured(load, bytes);
  update_pins();
  evict(budget_.admit({key, kind, name, bytes}));
  Held held{model.value, {}};
  for (const auto& part : model.parts) held.parts.push_back(part);
  held_[key] = std::move(held);
  return model.value;
}

CachedModel ModelCache::load_measured(const std::function<CachedModel()>& load,
                                      gpu::ModelBytes& bytes) {
  auto measured = [&] {
    const gpu::ModelBytes before = held_bytes(device_);
    CachedModel model = load();
    const gpu::ModelBytes after = held_bytes(device_);
    bytes.host_bytes = std::max<int64_t>(0, after.host_bytes - before.host_bytes);
    bytes.device_bytes = std::max<int64_t>(0, after.device_bytes - before.device_bytes);
    ++loads_;
    return model;
  };
  try {
    return measured();
  } catch (const c10::OutOfMemoryError&) {
    if (!evict_idle()) throw;
  } catch (const std::bad_alloc&) {
    if (!evict_idle()) throw;
  }
  return measured();
}

bool ModelCache::evict_idle() {
  update_pins();
  std::vector<std::string> idle;
  for (const auto& entry : budget_.entries()) {
    if (!entry.pinned) idle.push_back(entry.key);
  }
  evict(idle);
  if (is_accelerator(device_)) at::accelerator::emptyCache();
  return !idle.empty();
}

void ModelCache::update_pins() {
  for (const auto& [key, held] : held_) budget_.set_pinned(key, held.in_use());
}

void ModelCache::evict(const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    budget_.remove(key);
    held_.erase(key);
  }
}

void ModelCache::clear() {
  budget_.clear();
  held_.clear();
}

std::vector<LoadedModel> ModelCache::loaded() const {
  std::vector<LoadedModel> models;
  const auto& entries = budget_.entries();
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    models.push_back({it->kind, it->name, it->bytes});
  }
  return models;
}

}  // namespace df::nodes
