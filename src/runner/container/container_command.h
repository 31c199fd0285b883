// The command lines of a container engine client (docker, podman) that run, inspect and remove
// runner containers: pure functions of what the worker knows.
#pragma once

#include <string>
#include <vector>

#include "runner/container/runners_config.h"

namespace df::runner {

// The label every runner container carries, the one naming the data directory it serves and the
// one naming the host of its worker.
inline constexpr const char* kRunnerLabel = "dreamforge.runner";
inline constexpr const char* kDataDirLabel = "dreamforge.data-dir";
inline constexpr const char* kHostLabel = "dreamforge.host";
// Runner container names: this prefix, the worker's process id, then a number unique in it.
inline constexpr const char* kContainerNamePrefix = "dreamforge-runner-";

// How one worker runs its runners in containers.
struct ContainerLaunch {
  ContainerSettings settings;
  std::string data_dir;                      // its absolute path goes in the data-dir label
  std::string host;                          // the worker's host name, in the host label
  std::string user;                          // "uid:gid" the runner runs as (the worker's)
  std::vector<std::string> read_only_mounts; // host folders mounted at the same path, read-only
  std::vector<std::string> writable_mounts;  // host folders mounted at the same path, writable
  // The device the runner is pinned to ("cuda:N"), "cuda" for every GPU, "" or "cpu" for none.
  std::string gpu_device;
};

// `<engine> run -i --rm --name <name> ... <image> <runner flags>`: the runner's protocol runs
// over the client's stdin and stdout. `runner_argv` is the runner's command line as a subprocess
// would get it (its executable first: the image's entrypoint replaces it). Each "NAME=value" of
// `environment` is passed as `-e NAME`, the value read from the client's own environment (argv
// shows in every process list); a runner given a GPU through GPU flags gets no CUDA_VISIBLE_DEVICES
// (the container sees only its GPU).
std::vector<std::string> container_run_argv(const ContainerLaunch& launch, const std::string& name,
                                            const std::vector<std::string>& runner_argv,
                                            const std::vector<std::string>& environment);

// `<engine> rm -f <name>`: stops (a paused or frozen one too) and removes it.
std::vector<std::string> container_remove_argv(const std::string& engine, const std::string& name);

// `<engine> inspect --format {{.State.Pid}} <name>`: its main process as the host numbers it.
std::vector<std::string> container_pid_argv(const std::string& engine, const std::string& name);

// `<engine> ps -a --filter label=... --format {{.Names}}`: the names of every runner container of
// `data_dir` started by a worker on `host`, running or not.
std::vector<std::string> runner_containers_argv(const std::string& engine,
                                                const std::string& data_dir,
                                                const std::string& host);

// "dreamforge-runner-<worker_pid>-<serial>".
std::string runner_container_name(long worker_pid, unsigned serial);
// The worker process id in a runner container's name; 0 for a name not made by
// runner_container_name.
long runner_container_owner(const std::string& name);

}  // namespace df::runner
