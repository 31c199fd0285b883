// Memory of a process and of the machine, read from /proc.
#include "worker/process_memory.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace df::worker {
namespace {

// The value in kB of a "Name:   1234 kB" line, in bytes.
std::optional<int64_t> read_kb_field(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(name.size() + 1));
    int64_t kb = 0;
    fields >> kb;
    return kb * 1024;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ProcessMemory> read_process_memory(pid_t pid) {
  const std::string status = "/proc/" + std::to_string(pid) + "/status";
  auto rss = read_kb_field(status, "VmRSS");
  if (!rss) return std::nullopt;
  return ProcessMemory{*rss, read_kb_field(status, "VmHWM").value_or(*rss)};
}

void reset_peak_memory(pid_t pid) {
  std::ofstream clear("/proc/" + std::to_string(pid) + "/clear_refs");
  clear << "5";
}

int64_t available_system_memory() {
  return read_kb_field("/proc/meminfo", "MemAvailable").value_or(0);
}

int64_t total_system_memory() { return read_kb_field("/proc/meminfo", "MemTotal").value_or(0); }

bool process_exists(pid_t pid) {
  return std::filesystem::exists("/proc/" + std::to_string(pid));
}

}  // namespace df::worker
