// `dreamforge jobs list|show|watch|cancel`: the jobs of a running service, from the command line.
#pragma once

#include <CLI/CLI.hpp>

namespace df::cli {

void register_jobs_commands(CLI::App& app);

}  // namespace df::cli
