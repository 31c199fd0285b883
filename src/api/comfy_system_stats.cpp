// GET /system_stats: the machine's memory, the server's version and command line.
#include "api/comfy_system_stats.h"

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

json system_stats() {
  const MemoryInfo memory = parse_meminfo(read_text("/proc/meminfo"));
  return {{"system",
           {{"os", "posix"},
            {"ram_total", memory.total_bytes},
            {"ram_free", memory.available_bytes},
            {"comfyui_version", std::string(DF_VERSION) + "-dreamforge"},
            {"python_version", kNoPython},
            {"pytorch_version", kNoPython},
            {"embedded_python", false},
            {"argv", command_line()}}},
          {"devices", json::array({{{"name", "cpu"},
                                    {"type", "cpu"},
                                    {"index", 0},
                                    {"vram_total", memory.total_bytes},
                                    {"vram_free", memory.available_bytes},
                                    {"torch_vram_total", memory.total_bytes},
                                    {"torch_vram_free", memory.available_bytes}}})}};
}

}  // namespace df::api
