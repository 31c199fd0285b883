// `dreamforge storage init`: creates the artifact storage (the S3 bucket or the folder) when it is
// missing and checks that it can be written.
#pragma once

#include <CLI/CLI.hpp>

namespace df::cli {

void register_storage_commands(CLI::App& app);

}  // namespace df::cli
