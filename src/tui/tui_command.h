// `dreamforge tui`: the full-screen terminal client, over ZeroMQ or, with --server, /v1 + SSE.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "tui/terminal_image.h"

namespace df::tui {

void register_tui_command(CLI::App& app);

// The protocol --images names: "auto" asks the terminal's environment (detect_image_protocol),
// the others name one; Error(kInvalidArgument) for anything else.
ImageProtocol image_protocol_from_option(
    const std::string& option, const std::function<const char*(const char*)>& getenv_like);

}  // namespace df::tui
