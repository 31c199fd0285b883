// How each kind of runner is isolated, as <data>/config/runners.yaml says: subprocess or container.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace df::runner {

enum class Isolation { kSubprocess, kContainer };

// How a container-mode runner gets its GPU: CDI (nvidia.com/gpu=N), Docker's --gpus, or none.
enum class GpuAccess { kCdi, kDocker, kNone };

// The container fields of one runner kind.
struct ContainerSettings {
  std::string engine = "docker";       // docker, podman, or the path of an engine client
  std::string image;                   // the runner image (its entrypoint is the runner)
  GpuAccess gpus = GpuAccess::kCdi;
  std::string memory;                  // --memory limit ("8g"); "" for none
  std::string network = "none";        // none or host
  std::vector<std::string> extra_args; // put before the image (--runtime=nvidia, --userns=keep-id)
};

struct KindIsolation {
  Isolation isolation = Isolation::kSubprocess;
  ContainerSettings container;  // read only for Isolation::kContainer
};

// Per runner kind: `native` (dreamforge-runner) and `comfy` (dreamforge-comfy-runner).
struct RunnersConfig {
  KindIsolation native;
  KindIsolation comfy;
};

// <data_dir>/config/runners.yaml
std::filesystem::path runners_config_path(const std::string& data_dir);

// Reads the file; a missing file is the defaults (every runner a subprocess). Throws
// Error(kInvalidArgument) naming the file, the line and the field for anything malformed (unknown
// fields included).
RunnersConfig load_runners_config(const std::filesystem::path& path);
RunnersConfig parse_runners_config(const std::string& yaml_text, const std::string& origin);

}  // namespace df::runner
