// Runner memory: budgets from the machine, the memory report, and emptying caches after runs.
#include "runner/runner_memory.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <ATen/DeviceAccelerator.h>

namespace df::runner {
namespace {

using nlohmann::json;

constexpr int64_t kMiB = 1 << 20;
constexpr int64_t kMinDeviceReserve = int64_t(2) << 30;

bool on_accelerator(const c10::Device& device) {
  const auto accelerator = at::accelerator::getAccelerator(false);
  return accelerator && device.type() == *accelerator;
}

c10::DeviceIndex index_of(const c10::Device& device) { return device.has_index() ? device.index() : 0; }

int64_t process_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

int64_t stat_current(const c10::CachingAllocator::StatArray& stat) {
  return stat[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].current;
}

int64_t stat_peak(const c10::CachingAllocator::StatArray& stat) {
  return stat[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
}

json bytes_json(const gpu::ModelBytes& bytes) {
  return {{"device_bytes", bytes.device_bytes}, {"host_bytes", bytes.host_bytes}};
}

}  // namespace

gpu::ModelBytes model_budgets(int64_t ram_budget_mb, int64_t vram_budget_mb, const c10::Device& device) {
  gpu::ModelBytes budgets;
  budgets.host_bytes = ram_budget_mb > 0 ? ram_budget_mb * kMiB
                                         : int64_t(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE) / 2;
  if (vram_budget_mb > 0) {
    budgets.device_bytes = vram_budget_mb * kMiB;
  } else if (on_accelerator(device)) {
    const auto total = static_cast<int64_t>(at::accelerator::getMemoryInfo(index_of(device)).second);
    budgets.device_bytes = std::max<int64_t>(0, total - std::max(kMinDeviceReserve, total / 4));
  }
  return budgets;
}

std::string device_label(const c10::Device& device) {
  if (!on_accelerator(device)) return "cpu";
  return c10::DeviceTypeName(device.type(), /*lower_case=*/true) + ":" + std::to_string(index_of(device));
}

void reset_peak_memory(const c10::Device& device) {
  if (on_accelerator(device)) at::accelerator::resetPeakStats(index_of(device));
}

void give_back_memory(const c10::Device& device) {
  if (on_accelerator(device)) at::accelerator::emptyCache();
  malloc_trim(0);
}

json memory_report(const nodes::ModelCache& cache) {
  const c10::Device& device = cache.device();
  json loaded = json::array();
  for (const auto& model : cache.loaded()) {
    json entry = {{"kind", model.kind}, {"name", model.name}};
    entry.update(bytes_json(model.bytes));
    loaded.push_back(entry);
  }
  json models = bytes_json(cache.total());
  models["loaded"] = loaded;
  models["loads"] = cache.loads();
  json report = {{"device", device_label(device)}, {"process_rss_bytes", process_rss_bytes()},
                 {"models", models}};
  if (on_accelerator(device)) {
    const auto stats = at::accelerator::getDeviceStats(index_of(device));
    report["allocator"] = {{"allocated_bytes", stat_current(stats.allocated_bytes)},
                           {"reserved_bytes", stat_current(stats.reserved_bytes)},
                           {"peak_allocated_bytes", stat_peak(stats.allocated_bytes)}};
  }
  return report;
}

}  // namespace df::runner
