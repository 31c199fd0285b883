// The GPU memory budget for starting a runner or backend on a device: start it, stop idle ones
// (least recently used first) to make room, or refuse with the numbers. Pure: the caller reads memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::gpu {

// A runner or backend this service started on the device.
struct StartedOnDevice {
  std::string id;             // its runner id ("native", "backend:<name>", or a worker id)
  int64_t held_bytes = 0;     // what stopping it gives back
  int64_t last_used_ms = 0;   // when it last finished a job (any steady clock; only order matters)
  bool busy = false;          // running a job: never stopped to make room
};

struct StartBudgetInput {
  std::string starting;                 // what is to start, e.g. "backend:sdxl"
  std::string device;                   // "cuda:N"
  int64_t need_bytes = 0;               // its declared memory need
  int64_t free_bytes = 0;               // the device's free memory now (NVML)
  std::vector<StartedOnDevice> started; // the others this service started on the device
};

enum class StartAction {
  kStart,          // it fits now
  kStopThenStart,  // it fits once `stop` are stopped
  kRefuse,         // it does not fit even with every idle one stopped
};

struct StartBudgetDecision {
  StartAction action = StartAction::kStart;
  std::vector<std::string> stop;  // kStopThenStart: idle ones to stop first, least recently used first
};

// Start when the need fits in what is free; else stop idle ones, least recently used first (ties
// by id), only as many as needed; refuse when even all idle ones stopped leave too little. Busy
// ones are never stopped.
StartBudgetDecision decide_start(const StartBudgetInput& input);

// The numbers of a refused start: {"starting","device","need_bytes","free_bytes",
// "freeable_bytes" (held by idle ones), "busy_bytes" (held by busy ones)}.
nlohmann::json start_budget_details(const StartBudgetInput& input);

// One plain sentence with the numbers: "backend:sdxl needs 9.8 GB of GPU memory to start but
// cuda:0 has 3.2 GB free, and stopping the idle runners Dream Forge started there would free
// 1.1 GB more (busy ones hold 2 GB); it was not started. Free memory on the device, or lower its
// memory_need."
std::string start_refused_message(const StartBudgetInput& input);

}  // namespace df::gpu
