// GET /system_stats: the machine's memory, the server's version and command line, as ComfyUI
// reports them.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "gpu/nvml.h"
#include "gpu/runner_roster.h"

namespace df::api {

struct MemoryInfo {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
};

// MemTotal and MemAvailable of a /proc/meminfo text. Throws Error(kIo) when either is missing.
MemoryInfo parse_meminfo(std::string_view text);

// The machine's RAM now (/proc/meminfo).
MemoryInfo system_memory();

// ComfyUI's "devices": each GPU as ComfyUI reports a CUDA device ("cuda:0 NVIDIA H100 80GB HBM3 :
// native", memory from NVML; torch_vram_total and torch_vram_free from the caching allocators of
// the runners on it that reported them, else 0, their reserved-but-unused memory counting as free
// as ComfyUI counts it); without GPUs the CPU as the one device, with the machine's RAM.
nlohmann::json comfy_devices(const std::vector<gpu::GpuDevice>& gpus,
                             const std::vector<gpu::RunnerState>& runners, const MemoryInfo& ram);

// ComfyUI's {"system": {...}, "devices": [...]} for this process: RAM from /proc/meminfo, argv
// as the program name and subcommand only (no options, which may hold credentials), Dream Forge's
// version as comfyui_version, and comfy_devices of the GPUs `nvml` shows (none without one) and
// this process's `runners`.
nlohmann::json system_stats(const gpu::Nvml* nvml, const std::vector<gpu::RunnerState>& runners);

}  // namespace df::api
