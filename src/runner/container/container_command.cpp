// Builds the engine client's command lines for runner containers.
#include "runner/container/container_command.h"

#include <charconv>

#include "core/error.h"

namespace df::runner {
namespace {

std::string variable_name(const std::string& entry) { return entry.substr(0, entry.find('=')); }

bool is_device_selection(const std::string& name) {
  return name == "CUDA_VISIBLE_DEVICES" || name == "CUDA_DEVICE_ORDER";
}

// "-v PATH:PATH[:ro]": the host folder at the same path inside, so the protocol's paths need no
// translation.
void add_mount(std::vector<std::string>& argv, const std::string& path, bool read_only) {
  if (path.empty() || path.front() != '/') {
    throw Error(ErrorCode::kInvalidArgument,
                "a runner container's mount must be an absolute path, not '" + path + "'");
  }
  if (path.find(':') != std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument,
                "a runner container cannot mount '" + path + "': its path holds a ':'");
  }
  argv.insert(argv.end(), {"-v", path + ":" + path + (read_only ? ":ro" : "")});
}

// The GPU flags for `gpu_device` ("cuda:N", "cuda"); none for the CPU or GpuAccess::kNone.
std::vector<std::string> gpu_flags(GpuAccess access, const std::string& gpu_device) {
  if (access == GpuAccess::kNone || !gpu_device.starts_with("cuda")) return {};
  const std::string index = gpu_device.starts_with("cuda:") ? gpu_device.substr(5) : "";
  if (access == GpuAccess::kCdi) {
    return {"--device", "nvidia.com/gpu=" + (index.empty() ? std::string("all") : index)};
  }
  return {"--gpus", index.empty() ? std::string("all") : "device=" + index};
}

}  // namespace

std::vector<std::string> container_run_argv(const ContainerLaunch& launch, const std::string& name,
                                            const std::vector<std::string>& runner_argv,
                                            const std::vector<std::string>& environment) {
  const ContainerSettings& settings = launch.settings;
  if (settings.image.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "a container-mode runner needs an image");
  }
  std::vector<std::string> argv = {settings.engine, "run", "-i", "--rm", "--name", name,
                                   "--label", std::string(kRunnerLabel) + "=1",
                                   "--label", std::string(kDataDirLabel) + "=" + launch.data_dir,
                                   "--label", std::string(kHostLabel) + "=" + launch.host,
                                   "--network", settings.network, "--read-only",
                                   "--tmpfs", "/tmp", "--user", launch.user,
                                   "--cap-drop", "ALL", "--security-opt", "no-new-privileges"};
  for (const auto& path : launch.read_only_mounts) add_mount(argv, path, true);
  for (const auto& path : launch.writable_mounts) add_mount(argv, path, false);
  const std::vector<std::string> gpus = gpu_flags(settings.gpus, launch.gpu_device);
  for (const auto& entry : environment) {
    const std::string variable = variable_name(entry);
    if (!gpus.empty() && is_device_selection(variable)) continue;
    argv.insert(argv.end(), {"-e", variable});
  }
  argv.insert(argv.end(), gpus.begin(), gpus.end());
  if (!settings.memory.empty()) argv.insert(argv.end(), {"--memory", settings.memory});
  argv.insert(argv.end(), settings.extra_args.begin(), settings.extra_args.end());
  argv.push_back(settings.image);
  if (!runner_argv.empty()) argv.insert(argv.end(), runner_argv.begin() + 1, runner_argv.end());
  return argv;
}

std::vector<std::string> container_remove_argv(const std::string& engine, const std::string& name) {
  return {engine, "rm", "-f", name};
}

std::vector<std::string> container_pid_argv(const std::string& engine, const std::string& name) {
  return {engine, "inspect", "--format", "{{.State.Pid}}", name};
}

std::vector<std::string> runner_containers_argv(const std::string& engine,
                                                const std::string& data_dir,
                                                const std::string& host) {
  return {engine,
          "ps",
          "-a",
          "--filter",
          "label=" + std::string(kRunnerLabel) + "=1",
          "--filter",
          "label=" + std::string(kDataDirLabel) + "=" + data_dir,
          "--filter",
          "label=" + std::string(kHostLabel) + "=" + host,
          "--format",
          "{{.Names}}"};
}

std::string runner_container_name(long worker_pid, unsigned serial) {
  return kContainerNamePrefix + std::to_string(worker_pid) + "-" + std::to_string(serial);
}

long runner_container_owner(const std::string& name) {
  const std::string prefix = kContainerNamePrefix;
  if (!name.starts_with(prefix)) return 0;
  const std::string rest = name.substr(prefix.size());
  const size_t dash = rest.find('-');
  if (dash == std::string::npos || dash == 0) return 0;
  long pid = 0;
  const auto [end, error] = std::from_chars(rest.data(), rest.data() + dash, pid);
  if (error != std::errc() || end != rest.data() + dash) return 0;
  return pid;
}

}  // namespace df::runner
