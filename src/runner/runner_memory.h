// The runner's memory: default model budgets, the `memory` object of its events, and giving
// transient memory back after a run.
#pragma once

#include <cstdint>
#include <string>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "gpu/model_budget.h"
#include "nodes/model_cache.h"

namespace df::runner {

// The budgets in MiB as given (0: the default), in bytes: host memory defaults to half the
// machine's; device memory to the device's total less a working reserve (a quarter of it, at
// least 2 GiB), and to 0 on the CPU.
gpu::ModelBytes model_budgets(int64_t ram_budget_mb, int64_t vram_budget_mb, const c10::Device& device);
// "cpu" or "cuda:N" (the accelerator's type and index; N is 0 where none was named).
std::string device_label(const c10::Device& device);
// Starts the allocator's peak memory afresh (on an accelerator; nothing on the CPU).
void reset_peak_memory(const c10::Device& device);
// Returns cached, unused memory: the accelerator allocator's cache, or the C heap's free pages.
void give_back_memory(const c10::Device& device);
// The `memory` object of run_started, run_finished and freed (docs/runner-protocol.md).
nlohmann::json memory_report(const nodes::ModelCache& cache);

}  // namespace df::runner
