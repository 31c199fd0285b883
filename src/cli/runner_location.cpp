// Runner executable lookup.
#include "cli/runner_location.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace df::cli {

std::string runner_executable() {
  if (const char* env = std::getenv("DREAMFORGE_RUNNER"); env && *env) return env;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
  std::filesystem::path runner = self.parent_path() / "dreamforge-runner";
  if (!std::filesystem::exists(runner)) {
    throw Error(ErrorCode::kInternal, "dreamforge-runner not found next to " + self.string() +
                                          " (set DREAMFORGE_RUNNER to its path)");
  }
  return runner.string();
}

}  // namespace df::cli
