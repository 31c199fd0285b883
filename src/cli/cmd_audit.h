// `dreamforge audit`: the audit log of admin actions, newest first.
#pragma once

#include <CLI/CLI.hpp>

namespace df::cli {

void register_audit_command(CLI::App& app);

}  // namespace df::cli
