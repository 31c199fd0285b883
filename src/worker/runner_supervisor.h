// Keeps one runner subprocess warm for a worker: starts it, checks its hello, stops or kills it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runner/protocol_messages.h"
#include "runner/runner_process.h"

namespace df::worker {

struct RunnerSettings {
  std::vector<std::string> argv;  // runner executable and its flags
  std::vector<std::string> environment{};  // "NAME=value" set for the runner (a pinned device's CUDA_*)
  // The device the runner is pinned to in NVML's numbering ("cuda:1", whose runner sees it as its
  // only GPU and says "cuda"); "" when the runner's hello names it.
  std::string pinned_device{};
  int hello_timeout_ms = 60000;
  int kill_grace_ms = 5000;       // between TERM and KILL
};

class RunnerSupervisor {
 public:
  explicit RunnerSupervisor(RunnerSettings settings);
  ~RunnerSupervisor();

  // The live runner, started (and greeted) when none is running. Throws Error(kRunnerCrashed)
  // when it cannot start, does not say hello in time, or says a hello this worker refuses (another
  // protocol version).
  runner::RunnerProcess& ensure_started();
  // The device the runner runs on: the pinned device, else the one its hello reported ("" before
  // the first start).
  const std::string& device() const {
    return settings_.pinned_device.empty() ? hello_device() : settings_.pinned_device;
  }
  // The device the runner named in its hello ("cuda" for a runner that sees one pinned GPU).
  const std::string& hello_device() const { return hello_.capabilities.device; }
  // The devices the runner said it can see in its hello ("cpu", "cuda").
  const std::vector<std::string>& devices() const { return hello_.capabilities.devices; }
  // What the runner said it can run in its last hello (empty before the first start).
  const runner::RunnerCapabilities& capabilities() const { return hello_.capabilities; }
  // The live runner's process id; 0 while none runs (or the one that ran has exited).
  pid_t pid() const;
  const std::string& executable() const { return settings_.argv.front(); }
  int kill_grace_ms() const { return settings_.kill_grace_ms; }
  // Asks the runner to shut down (stdin closed), escalating to TERM and KILL; reaps it and returns
  // how it ended. Does nothing when no runner runs.
  std::string stop();
  // TERM at once, KILL after the grace period; reaps it and returns how it ended.
  std::string kill();
  // Asks a running runner to drop its models and caches and waits for its "freed" answer (a runner
  // that does not answer in time is stopped: its memory goes back either way).
  void free_memory();

 private:
  // Waits for the new runner's hello and keeps it; throws as ensure_started says.
  void greet();

  RunnerSettings settings_;
  std::unique_ptr<runner::RunnerProcess> process_;
  runner::HelloEvent hello_;
};

}  // namespace df::worker
