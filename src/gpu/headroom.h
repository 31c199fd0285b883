// The headroom check before a job starts: does its preset's memory need fit its device, and what
// must be freed (or waited for) first. Pure: the caller reads the memory figures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::gpu {

// Another of this service's runners on the same device.
struct PeerRunner {
  std::string worker_id;
  bool busy = false;            // running a job: it cannot free until the job ends
  int64_t evictable_bytes = 0;  // what it would give back if asked to free its models
};

// What the check looks at, in bytes.
struct HeadroomInput {
  std::string preset;              // the preset whose memory need this is
  std::string device;              // "cpu" or "cuda:N"
  int64_t need_bytes = 0;          // the preset's memory_mb
  int64_t free_bytes = 0;          // NVML's free on a GPU, MemAvailable on the CPU
  int64_t total_bytes = 0;         // the device's memory (0 when unknown)
  int64_t own_evictable_bytes = 0; // what this worker's own runner holds and could free
  bool own_model_warm = false;     // this worker's runner already holds the job's model
  std::vector<PeerRunner> peers;   // this service's other runners on the device
};

enum class HeadroomAction {
  kRun,   // it fits now
  kFree,  // it fits once the runners in the decision free their models
  kWait,  // it fits only once busy runners of ours finish and free: wait (bounded), look again
  kFail,  // it cannot fit on this device even with every runner of ours freed
};

struct HeadroomDecision {
  HeadroomAction action = HeadroomAction::kRun;
  bool free_own = false;                   // kFree: this worker's runner frees its models
  std::vector<std::string> peers_to_free;  // kFree: idle peers asked to free, largest first
};

// Run when the need fits in what is free (or in free plus this runner's memory when its models
// include the job's: the model is already loaded); else free this runner, then idle peers
// (largest first), as far as needed; wait when only busy peers hold the rest; fail when even all
// of it is too little. Never a smaller preset: a job runs as asked or not at all.
HeadroomDecision decide_headroom(const HeadroomInput& input);

// The numbers of a job that does not fit: {"preset","device","need_bytes","free_bytes",
// "total_bytes","held_by_our_runners_bytes"}.
nlohmann::json headroom_details(const HeadroomInput& input);

// One plain sentence with the numbers: "The preset 'huge' needs 9.8 GB of memory but cuda:1 has
// 3.2 GB free of 8 GB (our runners hold 1.1 GB more); the job was not started. Free memory on
// the device, or choose a smaller preset."
std::string insufficient_memory_message(const HeadroomInput& input);

}  // namespace df::gpu
