// GET /system_stats: the machine's memory, the server's version and command line, as ComfyUI
// reports them.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

namespace df::api {

struct MemoryInfo {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
};

// MemTotal and MemAvailable of a /proc/meminfo text. Throws Error(kIo) when either is missing.
MemoryInfo parse_meminfo(std::string_view text);

// ComfyUI's {"system": {...}, "devices": [...]} for this process: RAM from /proc/meminfo, argv
// as the program name and subcommand only (no options, which may hold credentials), Dream Forge's
// version as comfyui_version, and the CPU as the one device (the HTTP service does not drive a GPU
// itself; its runners may).
nlohmann::json system_stats();

}  // namespace df::api
