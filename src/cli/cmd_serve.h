// `dreamforge serve|api|worker`: the job service, whole or in its two halves.
#pragma once

#include <CLI/CLI.hpp>

namespace df::cli {

void register_service_commands(CLI::App& app);

}  // namespace df::cli
