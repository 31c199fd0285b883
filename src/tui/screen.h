// Draws the terminal client's screens (main, gallery, compare, help) on the curses screen.
#pragma once

#include <string>

#include "tui/client_state.h"
#include "tui/controller.h"
#include "tui/image_painter.h"
#include "tui/image_source.h"
#include "tui/prompt_form.h"

namespace df::tui {

struct ScreenContext {
  const ClientState& state;
  const PromptForm& form;
  const Controller& controller;
  std::string link;  // the link's description for the status line
  bool utf8 = false;
  ImagePainter& painter;
  ImageCache& images;
};

// Erases stdscr and draws the screen the controller shows into it, with images through the
// painter; the caller refreshes. Everything fits in 80x24 and larger screens use the room.
void draw_screen(const ScreenContext& context);

}  // namespace df::tui
