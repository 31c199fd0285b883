// `dreamforge generate`: prompt in, images out, through a runner subprocess.
#pragma once

#include <CLI/CLI.hpp>

namespace df::cli {

void register_generate_command(CLI::App& app);

}  // namespace df::cli
