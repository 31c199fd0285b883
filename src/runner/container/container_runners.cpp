// Container-mode runners as the worker handles them, through the engine client.
#include "runner/container/container_runners.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <unistd.h>

#include "core/error.h"
#include "core/numbers.h"
#include "runner/container/engine_client.h"

namespace df::runner {
namespace {

namespace fs = std::filesystem;

std::string absolute(const std::string& path) {
  return fs::absolute(path).lexically_normal().string();
}

std::vector<std::string> absolute(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& path : paths) out.push_back(absolute(path));
  return out;
}

std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

bool process_alive(long pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

}  // namespace

std::string engine_client_path(const std::string& engine) {
  if (engine.find('/') != std::string::npos) return engine;
  const char* path = std::getenv("PATH");
  std::istringstream folders(path ? path : "");
  for (std::string folder; std::getline(folders, folder, ':');) {
    const fs::path candidate = fs::path(folder.empty() ? "." : folder) / engine;
    if (::access(candidate.c_str(), X_OK) == 0) return absolute(candidate.string());
  }
  throw Error(ErrorCode::kUnavailable, "the container engine client '" + engine +
                                           "' of runners.yaml is not in PATH");
}

ContainerLaunch container_launch(const ContainerSettings& settings, const std::string& data_dir,
                                 const std::vector<std::string>& read_only_folders,
                                 const std::vector<std::string>& writable_folders,
                                 const std::string& gpu_device) {
  ContainerLaunch launch;
  launch.settings = settings;
  launch.settings.engine = engine_client_path(settings.engine);
  launch.data_dir = absolute(data_dir);
  launch.host = host_name();
  launch.user = std::to_string(::getuid()) + ":" + std::to_string(::getgid());
  launch.read_only_mounts = absolute(read_only_folders);
  launch.writable_mounts = absolute(writable_folders);
  launch.gpu_device = gpu_device;
  return launch;
}

std::string next_runner_container_name() {
  static std::atomic<unsigned> serial{0};
  return runner_container_name(::getpid(), ++serial);
}

std::string remove_container(const std::string& engine, const std::string& name, int timeout_ms) {
  const EngineResult result = run_engine_client(container_remove_argv(engine, name), timeout_ms);
  // Gone already, or going: `run --rm` removes a container that exited by itself.
  for (const char* gone : {"No such container", "no such container", "already in progress"}) {
    if (result.finished && result.err.find(gone) != std::string::npos) return "";
  }
  return result.succeeded() ? "" : result.describe();
}

pid_t container_main_pid(const std::string& engine, const std::string& name, int timeout_ms) {
  const EngineResult result = run_engine_client(container_pid_argv(engine, name), timeout_ms);
  if (!result.succeeded()) return 0;
  const std::string text = result.out.substr(0, result.out.find_first_of(" \n"));
  const auto pid = parse_integer(text);
  return pid && *pid > 0 ? static_cast<pid_t>(*pid) : 0;
}

std::vector<std::string> leftover_runner_containers(const std::vector<std::string>& names,
                                                    long self,
                                                    const std::function<bool(long)>& alive) {
  std::vector<std::string> out;
  for (const auto& name : names) {
    const long owner = runner_container_owner(name);
    if (owner != 0 && (owner == self || !alive(owner))) out.push_back(name);
  }
  return out;
}

std::vector<std::string> remove_leftover_runner_containers(const std::string& engine,
                                                           const std::string& data_dir,
                                                           int timeout_ms) {
  const EngineResult listed = run_engine_client(
      runner_containers_argv(engine, absolute(data_dir), host_name()), timeout_ms);
  if (!listed.succeeded()) {
    throw Error(ErrorCode::kUnavailable,
                "cannot list the runner containers with " + engine + ": " + listed.describe());
  }
  std::vector<std::string> names;
  std::istringstream lines(listed.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) names.push_back(line);
  }
  std::vector<std::string> removed;
  for (const auto& name : leftover_runner_containers(names, ::getpid(), process_alive)) {
    if (remove_container(engine, name, timeout_ms).empty()) removed.push_back(name);
  }
  return removed;
}

}  // namespace df::runner
