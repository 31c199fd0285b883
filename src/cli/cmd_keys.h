// `dreamforge keys create|list|revoke`: the API keys of the service's database.
#pragma once

#include <CLI/CLI.hpp>

namespace df::cli {

void register_keys_commands(CLI::App& app);

}  // namespace df::cli
