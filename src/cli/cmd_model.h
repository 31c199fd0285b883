// `dreamforge model ...`: subcommands that manage model files.
#pragma once

namespace CLI {
class App;
}

namespace df::cli {

// Adds `model` and its subcommands to `app`: `create-tiny DIR --family sd1|sd2|sdxl|zimage
// [--kind K] [--seed N]`,
// `download REF [--jobs N]`, `verify ID|REF`, `list [--json]` and `remove ID`.
void register_model_commands(CLI::App& app);

}  // namespace df::cli
