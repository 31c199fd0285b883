// Finds the runner executables: $DREAMFORGE_RUNNER / $DREAMFORGE_COMFY_RUNNER, else next to this
// binary.
#pragma once

#include <string>

namespace df::cli {

// dreamforge-runner: the native libtorch runner.
std::string runner_executable();
// dreamforge-comfy-runner: the runner that drives a ComfyUI server (a backend).
std::string comfy_runner_executable();

}  // namespace df::cli
