// Runner executable lookup.
#include "cli/runner_location.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace df::cli {
namespace {

// $`variable`, else the executable `name` next to this binary; throws Error(kInternal) naming
// both when neither is there.
std::string executable_beside_self(const std::string& name, const char* variable) {
  if (const char* env = std::getenv(variable); env && *env) return env;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
  std::filesystem::path runner = self.parent_path() / name;
  if (!std::filesystem::exists(runner)) {
    throw Error(ErrorCode::kInternal, name + " not found next to " + self.string() + " (set " +
                                          variable + " to its path)");
  }
  return runner.string();
}

}  // namespace

std::string runner_executable() {
  return executable_beside_self("dreamforge-runner", "DREAMFORGE_RUNNER");
}

std::string comfy_runner_executable() {
  return executable_beside_self("dreamforge-comfy-runner", "DREAMFORGE_COMFY_RUNNER");
}

}  // namespace df::cli
