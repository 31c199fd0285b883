// The device the workers generate on, as routing sees it: a device class and its memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace df::registry {

// Classes of devices that presets are tuned for, by the memory the device has:
//   cpu       no GPU: the CPU and system memory (MemTotal of /proc/meminfo)
//   gpu-8gb   a GPU with less than 11 GB (6, 8 and 10 GB cards)
//   gpu-12gb  a GPU with 11 GB up to less than 20 GB (11, 12 and 16 GB cards)
//   gpu-24gb  a GPU with 20 GB or more (24, 48, 80 GB cards)
enum class DeviceClass { kCpu, kGpu8gb, kGpu12gb, kGpu24gb };

// The class's name as the routing table and the API spell it ("cpu", "gpu-8gb", ...).
std::string_view device_class_name(DeviceClass device_class);
// The class named `name`; nullopt for an unknown name.
std::optional<DeviceClass> device_class_from_name(std::string_view name);
// Every class name, smallest first (for messages that list them).
std::vector<std::string> device_class_names();
// The class of a GPU with `memory_mb` megabytes (MiB) of memory.
DeviceClass gpu_device_class(int64_t memory_mb);

struct DeviceProfile {
  DeviceClass device_class = DeviceClass::kCpu;
  int64_t memory_mb = 0;  // memory the models can use, MiB
  bool operator==(const DeviceProfile&) const = default;
};

// MemTotal in MiB from the text of /proc/meminfo; nullopt when the text has no usable MemTotal.
std::optional<int64_t> meminfo_total_mb(std::string_view meminfo);

// The device the workers use, for an API process that does not see the GPU itself.
// `device` is the service's device setting: "cpu" (system memory from /proc/meminfo), "cuda" or
// "cuda:N" (a GPU: `gpu_memory_mb` must be given), or "auto" (a GPU when `gpu_memory_mb` is
// given, else the CPU). `gpu_memory_setting` names the setting that provides `gpu_memory_mb`
// (e.g. an environment variable) in the error that asks for it.
// Throws Error(kInvalidArgument) for an unknown device, a missing or non-positive GPU memory, and
// Error(kIo) when /proc/meminfo cannot be read.
DeviceProfile device_profile(std::string_view device, std::optional<int64_t> gpu_memory_mb,
                             std::string_view gpu_memory_setting);

}  // namespace df::registry
