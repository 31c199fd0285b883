// The terminal client's main loop: the link's news into the state, keys into actions, frames out.
#pragma once

#include <memory>

#include "tui/server_link.h"
#include "tui/terminal_image.h"

namespace df::tui {

// Takes over the terminal (curses) until the user quits, talking to the server through `link`
// and showing images with `protocol` where the terminal can (none without 256 colours or UTF-8
// for half blocks). Status pings go out every 2 s.
void run_tui(std::unique_ptr<ServerLink> link, ImageProtocol protocol);

}  // namespace df::tui
