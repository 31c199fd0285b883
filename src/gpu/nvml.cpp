// GPU memory through NVML, loaded with dlopen so that machines without an NVIDIA driver run too.
#include "gpu/nvml.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <map>

namespace df::gpu {
namespace {

// The few declarations of NVML's public nvml.h this file uses, with its exact layouts.
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr nvmlReturn_t kNvmlErrorInsufficientSize = 7;
constexpr unsigned long long kNvmlValueNotAvailable = ~0ULL;
constexpr unsigned int kNvmlNameBufferSize = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE
constexpr unsigned int kNvmlUuidBufferSize = 96;  // NVML_DEVICE_UUID_V2_BUFFER_SIZE

struct nvmlMemory_t {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

// nvmlProcessInfo_v2_t, which the _v3 process queries fill.
struct nvmlProcessInfo_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};

using InitFn = nvmlReturn_t (*)();
using ShutdownFn = nvmlReturn_t (*)();
using CountFn = nvmlReturn_t (*)(unsigned int*);
using HandleFn = nvmlReturn_t (*)(unsigned int, nvmlDevice_t*);
using TextFn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int);
using MemoryFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
using ProcessesFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned int*, nvmlProcessInfo_t*);

// Asking again when processes start between NVML's count and its list is bounded by this.
constexpr int kProcessListTries = 8;

std::string library_to_load(const std::string& library) {
  if (!library.empty()) return library;
  const char* configured = std::getenv("DREAMFORGE_NVML_LIBRARY");
  if (configured != nullptr && *configured != '\0') return configured;
  return "libnvidia-ml.so.1";
}

template <typename Fn>
Fn symbol(void* library, const char* name) {
  return reinterpret_cast<Fn>(::dlsym(library, name));
}

}  // namespace

// The loaded library and its entry points; the process queries may be absent (drivers before
// the _v3 queries answer no process lists).
struct Nvml::Api {
  void* library = nullptr;
  InitFn init = nullptr;
  ShutdownFn shutdown = nullptr;
  CountFn count = nullptr;
  HandleFn handle = nullptr;
  TextFn name = nullptr;
  TextFn uuid = nullptr;
  MemoryFn memory = nullptr;
  ProcessesFn compute_processes = nullptr;
  ProcessesFn graphics_processes = nullptr;
  bool initialised = false;

  ~Api() {
    if (initialised) shutdown();
    if (library != nullptr) ::dlclose(library);
  }

  bool complete() const {
    return init && shutdown && count && handle && name && uuid && memory;
  }

  std::optional<nvmlDevice_t> device_handle(int index) const {
    nvmlDevice_t device = nullptr;
    if (index < 0 || handle(static_cast<unsigned int>(index), &device) != kNvmlSuccess) {
      return std::nullopt;
    }
    return device;
  }

  // One process list of a device, asking again while NVML says the buffer is too small.
  std::vector<nvmlProcessInfo_t> process_list(ProcessesFn query, nvmlDevice_t device) const {
    if (query == nullptr) return {};
    std::vector<nvmlProcessInfo_t> infos;
    for (int attempt = 0; attempt < kProcessListTries; ++attempt) {
      unsigned int count = static_cast<unsigned int>(infos.size());
      const nvmlReturn_t result = query(device, &count, infos.empty() ? nullptr : infos.data());
      if (result == kNvmlSuccess) {
        infos.resize(std::min<size_t>(count, infos.size()));
        return infos;
      }
      if (result != kNvmlErrorInsufficientSize) return {};
      infos.resize(static_cast<size_t>(count) + 2);  // room for processes starting meanwhile
    }
    return {};
  }
};

Nvml::Nvml(std::unique_ptr<Api> api) : api_(std::move(api)) {}

Nvml::~Nvml() = default;

std::shared_ptr<Nvml> Nvml::open(const std::string& library) {
  auto api = std::make_unique<Api>();
  api->library = ::dlopen(library_to_load(library).c_str(), RTLD_NOW | RTLD_LOCAL);
  if (api->library == nullptr) return nullptr;
  api->init = symbol<InitFn>(api->library, "nvmlInit_v2");
  api->shutdown = symbol<ShutdownFn>(api->library, "nvmlShutdown");
  api->count = symbol<CountFn>(api->library, "nvmlDeviceGetCount_v2");
  api->handle = symbol<HandleFn>(api->library, "nvmlDeviceGetHandleByIndex_v2");
  api->name = symbol<TextFn>(api->library, "nvmlDeviceGetName");
  api->uuid = symbol<TextFn>(api->library, "nvmlDeviceGetUUID");
  api->memory = symbol<MemoryFn>(api->library, "nvmlDeviceGetMemoryInfo");
  api->compute_processes =
      symbol<ProcessesFn>(api->library, "nvmlDeviceGetComputeRunningProcesses_v3");
  api->graphics_processes =
      symbol<ProcessesFn>(api->library, "nvmlDeviceGetGraphicsRunningProcesses_v3");
  if (!api->complete() || api->init() != kNvmlSuccess) return nullptr;
  api->initialised = true;
  return std::shared_ptr<Nvml>(new Nvml(std::move(api)));
}

std::vector<GpuDevice> Nvml::devices() const {
  unsigned int count = 0;
  if (api_->count(&count) != kNvmlSuccess) return {};
  std::vector<GpuDevice> devices;
  for (unsigned int i = 0; i < count; ++i) {
    if (auto found = device(static_cast<int>(i))) devices.push_back(std::move(*found));
  }
  return devices;
}

std::optional<GpuDevice> Nvml::device(int index) const {
  const auto handle = api_->device_handle(index);
  if (!handle) return std::nullopt;
  char name[kNvmlNameBufferSize] = {};
  char uuid[kNvmlUuidBufferSize] = {};
  nvmlMemory_t memory{};
  if (api_->name(*handle, name, sizeof name) != kNvmlSuccess ||
      api_->uuid(*handle, uuid, sizeof uuid) != kNvmlSuccess ||
      api_->memory(*handle, &memory) != kNvmlSuccess) {
    return std::nullopt;
  }
  name[sizeof name - 1] = '\0';
  uuid[sizeof uuid - 1] = '\0';
  return GpuDevice{index,
                   name,
                   uuid,
                   static_cast<int64_t>(memory.total),
                   static_cast<int64_t>(memory.free),
                   static_cast<int64_t>(memory.used)};
}

std::vector<GpuProcess> Nvml::processes(int index) const {
  const auto handle = api_->device_handle(index);
  if (!handle) return {};
  // A process using the device for compute and graphics is in both lists with the same memory:
  // it counts once. Under MIG one process may be listed per instance: those add up.
  std::map<pid_t, int64_t> compute;
  std::map<pid_t, int64_t> graphics;
  auto collect = [&](ProcessesFn query, std::map<pid_t, int64_t>& into) {
    for (const auto& info : api_->process_list(query, *handle)) {
      const int64_t used =
          info.usedGpuMemory == kNvmlValueNotAvailable ? 0 : static_cast<int64_t>(info.usedGpuMemory);
      into[static_cast<pid_t>(info.pid)] += used;
    }
  };
  collect(api_->compute_processes, compute);
  collect(api_->graphics_processes, graphics);
  for (const auto& [pid, used] : graphics) compute.try_emplace(pid, used);
  std::vector<GpuProcess> processes;
  for (const auto& [pid, used] : compute) processes.push_back({pid, used});
  return processes;
}

int64_t Nvml::process_memory(int index, pid_t pid) const {
  for (const auto& process : processes(index)) {
    if (process.pid == pid) return process.used_bytes;
  }
  return 0;
}

std::shared_ptr<const Nvml> system_nvml() {
  // Never destroyed: threads still reading at exit must not meet an unloaded library.
  static const auto* nvml = new std::shared_ptr<const Nvml>(Nvml::open());
  return *nvml;
}

}  // namespace df::gpu
