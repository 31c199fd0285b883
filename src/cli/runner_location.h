// Finds the dreamforge-runner executable: $DREAMFORGE_RUNNER, else next to this binary.
#pragma once

#include <string>

namespace df::cli {

std::string runner_executable();

}  // namespace df::cli
