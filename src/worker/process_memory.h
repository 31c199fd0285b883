// Memory of a (runner) process and of the machine, read from /proc.
#pragma once

#include <cstdint>
#include <optional>
#include <sys/types.h>

namespace df::worker {

struct ProcessMemory {
  int64_t resident_bytes = 0;  // VmRSS
  int64_t peak_bytes = 0;      // VmHWM: the high-water mark since start or the last reset
};

// nullopt when the process is gone.
std::optional<ProcessMemory> read_process_memory(pid_t pid);
// Starts a fresh high-water mark (best effort: needs Linux clear_refs on our own child).
void reset_peak_memory(pid_t pid);
// MemAvailable of the machine; 0 when unknown.
int64_t available_system_memory();
// MemTotal of the machine; 0 when unknown.
int64_t total_system_memory();
// True while /proc has an entry for the pid (a zombie counts as present).
bool process_exists(pid_t pid);

}  // namespace df::worker
