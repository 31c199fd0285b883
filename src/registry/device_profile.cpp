// The device the workers generate on, as routing sees it: a device class and its memory.
#include "registry/device_profile.h"

#include <array>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/numbers.h"

namespace df::registry {
namespace {

struct NamedClass {
  DeviceClass device_class;
  std::string_view name;
};

constexpr std::array<NamedClass, 4> kClasses = {{{DeviceClass::kCpu, "cpu"},
                                                 {DeviceClass::kGpu8gb, "gpu-8gb"},
                                                 {DeviceClass::kGpu12gb, "gpu-12gb"},
                                                 {DeviceClass::kGpu24gb, "gpu-24gb"}}};

constexpr int64_t kGpu12gbFromMb = 11 * 1024;
constexpr int64_t kGpu24gbFromMb = 20 * 1024;

int64_t system_memory_mb() {
  std::ifstream in("/proc/meminfo");
  std::stringstream text;
  text << in.rdbuf();
  const auto total = in ? meminfo_total_mb(text.str()) : std::nullopt;
  if (!total) throw Error(ErrorCode::kIo, "cannot read the system memory size from /proc/meminfo");
  return *total;
}

DeviceProfile gpu_profile(std::optional<int64_t> memory_mb, std::string_view device,
                          std::string_view setting) {
  if (!memory_mb) {
    throw Error(ErrorCode::kInvalidArgument,
                "the memory of GPU device '" + std::string(device) + "' is not known; set " +
                    std::string(setting) + " to its size in MB");
  }
  if (*memory_mb <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(setting) + " must be a positive number of MB, not " +
                    std::to_string(*memory_mb));
  }
  return {gpu_device_class(*memory_mb), *memory_mb};
}

}  // namespace

std::string_view device_class_name(DeviceClass device_class) {
  for (const auto& named : kClasses) {
    if (named.device_class == device_class) return named.name;
  }
  return "cpu";
}

std::optional<DeviceClass> device_class_from_name(std::string_view name) {
  for (const auto& named : kClasses) {
    if (named.name == name) return named.device_class;
  }
  return std::nullopt;
}

std::vector<std::string> device_class_names() {
  std::vector<std::string> names;
  for (const auto& named : kClasses) names.emplace_back(named.name);
  return names;
}

DeviceClass gpu_device_class(int64_t memory_mb) {
  if (memory_mb >= kGpu24gbFromMb) return DeviceClass::kGpu24gb;
  if (memory_mb >= kGpu12gbFromMb) return DeviceClass::kGpu12gb;
  return DeviceClass::kGpu8gb;
}

std::optional<int64_t> meminfo_total_mb(std::string_view meminfo) {
  constexpr std::string_view kKey = "MemTotal:";
  const auto start = meminfo.find(kKey);
  if (start == std::string_view::npos || (start > 0 && meminfo[start - 1] != '\n')) {
    return std::nullopt;
  }
  std::string_view rest = meminfo.substr(start + kKey.size());
  rest = rest.substr(0, rest.find('\n'));
  const auto digits_start = rest.find_first_not_of(' ');
  if (digits_start == std::string_view::npos) return std::nullopt;
  rest.remove_prefix(digits_start);
  const auto digits_end = rest.find(' ');
  if (digits_end == std::string_view::npos || rest.substr(digits_end + 1) != "kB") {
    return std::nullopt;
  }
  const auto kilobytes = parse_integer(rest.substr(0, digits_end));
  if (!kilobytes || *kilobytes <= 0) return std::nullopt;
  return *kilobytes / 1024;
}

DeviceProfile device_profile(std::string_view device, std::optional<int64_t> gpu_memory_mb,
                             std::string_view gpu_memory_setting) {
  const bool cuda = device == "cuda" || device.rfind("cuda:", 0) == 0;
  if (cuda || (device == "auto" && gpu_memory_mb)) {
    return gpu_profile(gpu_memory_mb, device, gpu_memory_setting);
  }
  if (device == "cpu" || device == "auto") return {DeviceClass::kCpu, system_memory_mb()};
  throw Error(ErrorCode::kInvalidArgument,
              "unknown device '" + std::string(device) + "'; use auto, cpu, cuda or cuda:N");
}

}  // namespace df::registry
