// GET /system_stats: the machine's memory, the server's version and command line.
#include "api/comfy_system_stats.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"

namespace df::api {
namespace {

using nlohmann::json;

// The server is C++: there is no Python, and the HTTP service does not load PyTorch.
constexpr const char* kNoPython = "n/a (C++ server)";

// The runners use PyTorch's own CUDA caching allocator, which torch.cuda.get_allocator_backend()
// names "native" (ComfyUI shows it after the device name).
constexpr const char* kAllocatorBackend = "native";

// The value of a "Key:   123 kB" line in bytes, or -1 when the key is absent.
int64_t meminfo_bytes(std::string_view text, std::string_view key) {
  for (size_t start = 0; start < text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (!line.starts_with(key) || line.substr(key.size(), 1) != ":") continue;
    line.remove_prefix(key.size() + 1);
    line.remove_prefix(std::min(line.find_first_not_of(' '), line.size()));
    int64_t value = 0;
    const auto [rest, error] = std::from_chars(line.data(), line.data() + line.size(), value);
    if (error != std::errc()) return -1;
    return std::string_view(rest, line.data() + line.size()).find("kB") != std::string_view::npos
               ? value * 1024
               : value;
  }
  return -1;
}

std::string read_text(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

// The program and its subcommand ("dreamforge", "serve"): options are left out, as their values
// may hold credentials (database and storage URLs) that clients must not see.
json command_line() {
  const std::string text = read_text("/proc/self/cmdline");
  std::vector<std::string> arguments;
  for (size_t start = 0; start < text.size() && arguments.size() < 2;) {
    const size_t end = std::min(text.find('\0', start), text.size());
    arguments.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  json argv = json::array();
  if (!arguments.empty()) argv.push_back(std::filesystem::path(arguments[0]).filename().string());
  if (arguments.size() > 1 && !arguments[1].starts_with('-')) argv.push_back(arguments[1]);
  return argv;
}

}  // namespace

MemoryInfo parse_meminfo(std::string_view text) {
  MemoryInfo info{meminfo_bytes(text, "MemTotal"), meminfo_bytes(text, "MemAvailable")};
  if (info.total_bytes < 0 || info.available_bytes < 0) {
    throw Error(ErrorCode::kIo, "/proc/meminfo has no MemTotal or MemAvailable line");
  }
  return info;
}

MemoryInfo system_memory() { return parse_meminfo(read_text("/proc/meminfo")); }

json comfy_devices(const std::vector<gpu::GpuDevice>& gpus,
                   const std::vector<gpu::RunnerState>& runners, const MemoryInfo& ram) {
  if (gpus.empty()) {
    return json::array({{{"name", "cpu"},
                         {"type", "cpu"},
                         {"index", 0},
                         {"vram_total", ram.total_bytes},
                         {"vram_free", ram.available_bytes},
                         {"torch_vram_total", ram.total_bytes},
                         {"torch_vram_free", ram.available_bytes}}});
  }
  json devices = json::array();
  for (const auto& gpu : gpus) {
    int64_t torch_total = 0;
    int64_t torch_free = 0;
    for (const auto& runner : runners) {
      if (runner.device_index != gpu.index || !runner.allocator_reserved_bytes) continue;
      torch_total += *runner.allocator_reserved_bytes;
      torch_free += std::max<int64_t>(
          0, *runner.allocator_reserved_bytes - runner.allocator_allocated_bytes.value_or(0));
    }
    devices.push_back({{"name", "cuda:" + std::to_string(gpu.index) + " " + gpu.name + " : " +
                                    kAllocatorBackend},
                       {"type", "cuda"},
                       {"index", gpu.index},
                       {"vram_total", gpu.total_bytes},
                       {"vram_free", gpu.free_bytes + torch_free},
                       {"torch_vram_total", torch_total},
                       {"torch_vram_free", torch_free}});
  }
  return devices;
}

json system_stats(const gpu::Nvml* nvml, const std::vector<gpu::RunnerState>& runners) {
  const MemoryInfo memory = system_memory();
  return {{"system",
           {{"os", "posix"},
            {"ram_total", memory.total_bytes},
            {"ram_free", memory.available_bytes},
            {"comfyui_version", std::string(DF_VERSION) + "-dreamforge"},
            {"python_version", kNoPython},
            {"pytorch_version", kNoPython},
            {"embedded_python", false},
            {"argv", command_line()}}},
          {"devices",
           comfy_devices(nvml ? nvml->devices() : std::vector<gpu::GpuDevice>{}, runners, memory)}};
}

}  // namespace df::api
