// The worker's side of container-mode runners: each runner's launch and name, the container's
// host process, its removal, and the removal of runner containers a crashed worker left behind.
#pragma once

#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "runner/container/container_command.h"

namespace df::runner {

// The launch of a runner of `settings` serving `data_dir`: the folders mounted at their absolute
// paths, run as this process's user and group, labelled with this host's name, with the GPU of
// `gpu_device` ("cuda:N", "cuda", "cpu" or ""); its engine client found in PATH (else
// Error(kUnavailable)).
ContainerLaunch container_launch(const ContainerSettings& settings, const std::string& data_dir,
                                 const std::vector<std::string>& read_only_folders,
                                 const std::vector<std::string>& writable_folders,
                                 const std::string& gpu_device);

// `engine` as the absolute path of its client: a path stays as it is, a name is looked up in PATH
// (Error(kUnavailable) when it is not there).
std::string engine_client_path(const std::string& engine);

// A name no other runner container of this process has had.
std::string next_runner_container_name();

// `<engine> rm -f <name>` within `timeout_ms`: "" once it is gone (or never existed), else what
// went wrong.
std::string remove_container(const std::string& engine, const std::string& name, int timeout_ms);

// The host's process id of the container's main process (the runner); 0 when the engine cannot
// say within `timeout_ms`.
pid_t container_main_pid(const std::string& engine, const std::string& name, int timeout_ms);

// Of `names` (runner containers of one data directory), those whose worker is gone: made by a
// process that no longer runs, or by a former process with this one's id (`self`).
std::vector<std::string> leftover_runner_containers(const std::vector<std::string>& names,
                                                    long self,
                                                    const std::function<bool(long)>& alive);

// Removes the runner containers of `data_dir` whose worker on this host is gone; returns their
// names (call it before this process starts any). Throws
// Error(kUnavailable) when the engine cannot list them within `timeout_ms`.
std::vector<std::string> remove_leftover_runner_containers(const std::string& engine,
                                                           const std::string& data_dir,
                                                           int timeout_ms);

}  // namespace df::runner
