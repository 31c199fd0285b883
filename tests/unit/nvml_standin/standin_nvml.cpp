// A stand-in for libnvidia-ml.so.1 in the NVML wrapper's unit tests: devices and processes from
// the text file named by $DF_STANDIN_NVML_CONFIG, read at nvmlInit_v2. Lines:
//   init_fails                                  nvmlInit_v2 answers NVML_ERROR_DRIVER_NOT_LOADED
//   device <total> <free> <used> <uuid> <name>   one GPU (the name is the rest of the line)
//   compute <device> <pid> <bytes|na>            a compute process (na: NVML_VALUE_NOT_AVAILABLE)
//   graphics <device> <pid> <bytes|na>           a graphics process
//   late_processes <n>                           the first count of each process list is n short,
//                                                as when processes start between count and list
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kSuccess = 0;
constexpr int kInvalidArgument = 2;
constexpr int kInsufficientSize = 7;
constexpr int kDriverNotLoaded = 9;

struct Memory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

struct ProcessInfo {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};

struct Device {
  Memory memory{};
  std::string uuid;
  std::string name;
  std::vector<ProcessInfo> compute;
  std::vector<ProcessInfo> graphics;
};

struct Config {
  bool init_fails = false;
  unsigned int late_processes = 0;
  std::vector<Device> devices;
};

Config config;
std::vector<bool> short_answer_given;  // per process list: its one short count was answered

Config read_config() {
  Config read;
  const char* path = std::getenv("DF_STANDIN_NVML_CONFIG");
  if (path == nullptr) return read;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) {
    std::istringstream words(line);
    std::string kind;
    words >> kind;
    if (kind == "init_fails") {
      read.init_fails = true;
    } else if (kind == "late_processes") {
      words >> read.late_processes;
    } else if (kind == "device") {
      Device device;
      words >> device.memory.total >> device.memory.free >> device.memory.used >> device.uuid;
      std::getline(words >> std::ws, device.name);
      read.devices.push_back(device);
    } else if (kind == "compute" || kind == "graphics") {
      size_t index = 0;
      ProcessInfo info{};
      std::string bytes;
      words >> index >> info.pid >> bytes;
      info.usedGpuMemory = bytes == "na" ? ~0ULL : std::stoull(bytes);
      Device& device = read.devices.at(index);
      (kind == "compute" ? device.compute : device.graphics).push_back(info);
    }
  }
  return read;
}

Device* device_of(void* handle) {
  for (auto& device : config.devices) {
    if (&device == handle) return &device;
  }
  return nullptr;
}

int copy_text(const std::string& text, char* out, unsigned int length) {
  if (text.size() + 1 > length) return kInsufficientSize;
  std::memcpy(out, text.c_str(), text.size() + 1);
  return kSuccess;
}

int list_processes(void* handle, unsigned int* count, ProcessInfo* infos, bool compute) {
  Device* device = device_of(handle);
  if (device == nullptr || count == nullptr) return kInvalidArgument;
  const std::vector<ProcessInfo>& list = compute ? device->compute : device->graphics;
  const size_t slot = 2 * static_cast<size_t>(device - config.devices.data()) + (compute ? 0 : 1);
  if (*count < list.size()) {
    unsigned int answer = static_cast<unsigned int>(list.size());
    if (!short_answer_given[slot] && config.late_processes > 0) {
      answer = answer > config.late_processes ? answer - config.late_processes : 0;
      short_answer_given[slot] = true;
    }
    *count = answer;
    return kInsufficientSize;
  }
  *count = static_cast<unsigned int>(list.size());
  if (!list.empty()) std::memcpy(infos, list.data(), list.size() * sizeof(ProcessInfo));
  return kSuccess;
}

}  // namespace

extern "C" {

int nvmlInit_v2() {
  config = read_config();
  short_answer_given.assign(2 * config.devices.size(), false);
  return config.init_fails ? kDriverNotLoaded : kSuccess;
}

int nvmlShutdown() { return kSuccess; }

int nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = static_cast<unsigned int>(config.devices.size());
  return kSuccess;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (index >= config.devices.size()) return kInvalidArgument;
  *device = &config.devices[index];
  return kSuccess;
}

int nvmlDeviceGetName(void* handle, char* name, unsigned int length) {
  Device* device = device_of(handle);
  return device == nullptr ? kInvalidArgument : copy_text(device->name, name, length);
}

int nvmlDeviceGetUUID(void* handle, char* uuid, unsigned int length) {
  Device* device = device_of(handle);
  return device == nullptr ? kInvalidArgument : copy_text(device->uuid, uuid, length);
}

int nvmlDeviceGetMemoryInfo(void* handle, Memory* memory) {
  Device* device = device_of(handle);
  if (device == nullptr) return kInvalidArgument;
  *memory = device->memory;
  return kSuccess;
}

int nvmlDeviceGetComputeRunningProcesses_v3(void* handle, unsigned int* count, ProcessInfo* infos) {
  return list_processes(handle, count, infos, true);
}

int nvmlDeviceGetGraphicsRunningProcesses_v3(void* handle, unsigned int* count, ProcessInfo* infos) {
  return list_processes(handle, count, infos, false);
}

}  // extern "C"
