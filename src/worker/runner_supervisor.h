// Keeps one runner warm for a worker (a subprocess, or a container through its engine client):
// starts it, checks its hello, stops or kills it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/container/container_command.h"
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
  // Set: each runner runs as a container started by the engine client (argv[0] is then replaced by
  // the image's entrypoint); its protocol runs over the client's stdin and stdout.
  std::optional<runner::ContainerLaunch> container{};
  int engine_timeout_ms = 20000;  // bound on each engine command besides `run` (inspect, rm -f)
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
  // The live runner's process id (a container's engine client); 0 while none runs (or the one that
  // ran has exited).
  pid_t pid() const;
  // The process whose memory is the runner's: the container's main process as the host numbers it
  // for a container-mode runner (the client when the engine could not say), else pid().
  pid_t memory_pid() const;
  // The live or last runner container's name; "" for a subprocess runner or before the first start.
  const std::string& container_name() const { return container_name_; }
  // The runner executable, or the image of a container-mode runner.
  const std::string& executable() const {
    return settings_.container ? settings_.container->settings.image : settings_.argv.front();
  }
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
  // The runner's process: the executable, or the engine client running a new container.
  std::unique_ptr<runner::RunnerProcess> spawn();
  // After the runner's process was reaped: its container (a killed client's, a frozen one) is
  // removed; returns `ended`, with the removal's failure when it failed.
  std::string remove_container(std::string ended);

  RunnerSettings settings_;
  std::unique_ptr<runner::RunnerProcess> process_;
  runner::HelloEvent hello_;
  std::string container_name_;
  pid_t container_pid_ = 0;  // the live container's main process on the host; 0 when unknown
};

}  // namespace df::worker
