// `dreamforge migrate`: brings the database schema up to date and reports its version.
#pragma once

#include <CLI/CLI.hpp>

namespace df::cli {

void register_migrate_command(CLI::App& app);

}  // namespace df::cli
