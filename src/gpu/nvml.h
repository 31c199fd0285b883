// GPU memory through NVML, loaded at run time: per device and per process (absent library = no GPUs).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace df::gpu {

// One GPU as NVML numbers it (PCI bus order; runners are started with CUDA_DEVICE_ORDER=PCI_BUS_ID
// so that CUDA's index is the same).
struct GpuDevice {
  int index = 0;
  std::string name;  // "NVIDIA H100 80GB HBM3"
  std::string uuid;  // "GPU-…"
  int64_t total_bytes = 0;
  int64_t free_bytes = 0;
  int64_t used_bytes = 0;
};

// A process holding memory on a GPU.
struct GpuProcess {
  pid_t pid = 0;
  int64_t used_bytes = 0;  // 0 when NVML cannot tell (it may not, e.g. in a container)
};

// A loaded and initialised NVML. Thread-safe (NVML itself is).
class Nvml {
 public:
  // Loads `library` (default: $DREAMFORGE_NVML_LIBRARY, else "libnvidia-ml.so.1") and calls
  // nvmlInit_v2. nullptr when the library is absent or does not initialise (a machine without an
  // NVIDIA driver): that is not an error, there are just no GPU figures.
  static std::shared_ptr<Nvml> open(const std::string& library = "");
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // Every GPU with its memory now.
  std::vector<GpuDevice> devices() const;
  // GPU `index` now; nullopt for an index NVML does not have (or a device that stopped answering).
  std::optional<GpuDevice> device(int index) const;
  // The processes holding memory on GPU `index` (compute and graphics, each pid once, by pid),
  // empty when unknown.
  std::vector<GpuProcess> processes(int index) const;
  // The memory `pid` holds on GPU `index` (0 when it holds none there).
  int64_t process_memory(int index, pid_t pid) const;

 private:
  struct Api;
  explicit Nvml(std::unique_ptr<Api> api);
  std::unique_ptr<Api> api_;
};

// The process-wide NVML, opened on first use (nullptr without one).
std::shared_ptr<const Nvml> system_nvml();

}  // namespace df::gpu
