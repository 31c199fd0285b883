// The terminal client's main loop.
#include "tui/tui_app.h"

#include <clocale>
#include <cstring>
#include <langinfo.h>

#include "tui/curses_include.h"

#include "tui/client_state.h"
#include "tui/controller.h"
#include "tui/image_painter.h"
#include "tui/image_source.h"
#include "tui/link_worker.h"
#include "tui/prompt_form.h"
#include "tui/screen.h"

namespace df::tui {

namespace {

constexpr std::chrono::milliseconds kStatusInterval{2000};
constexpr int kKeyWaitMs = 50;
constexpr int kImageFetchTimeoutMs = 3000;

void apply(ClientState& state, const LinkEvent& event) {
  switch (event.kind) {
    case LinkEvent::Kind::kUpdate: state.on_update(event.message); break;
    case LinkEvent::Kind::kReply: state.on_reply(event.request, event.message); break;
    case LinkEvent::Kind::kFailure:
      state.on_request_failed(event.request, event.unavailable, event.error);
      break;
  }
}

// curses for the length of the loop, given back to the shell however the loop ends.
class CursesSession {
 public:
  CursesSession() {
    initscr();
    raw();
    noecho();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    wtimeout(stdscr, kKeyWaitMs);
    if (has_colors()) {
      start_color();
      use_default_colors();
    }
  }
  ~CursesSession() { endwin(); }
  CursesSession(const CursesSession&) = delete;
  CursesSession& operator=(const CursesSession&) = delete;
};

}  // namespace

void run_tui(std::unique_ptr<ServerLink> link, ImageProtocol protocol) {
  std::setlocale(LC_ALL, "");
  const bool utf8 = std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
  LinkWorker worker(std::move(link), kStatusInterval);
  CursesSession session;
  ImagePainter painter(usable_protocol(protocol, has_colors() ? COLORS : 0, utf8), stdout);
  ImageCache images(kImageFetchTimeoutMs);
  ClientState state;
  PromptForm form;
  Controller controller(form, state, [&worker](pixels::Request request) {
    worker.send(std::move(request));
  });
  Screen shown = controller.screen();
  while (true) {
    for (const auto& event : worker.take_events()) apply(state, event);
    if (form.models() != state.checkpoint_names()) form.set_models(state.checkpoint_names());
    if (controller.screen() != shown) {
      shown = controller.screen();
      clearok(stdscr, TRUE);
      painter.forget_shown();
    }
    draw_screen({state, form, controller, worker.description(), utf8, painter, images});
    wnoutrefresh(stdscr);
    doupdate();
    painter.after_refresh();
    wint_t key = 0;
    const int kind = wget_wch(stdscr, &key);
    if (kind == ERR) continue;
    if (kind == KEY_CODE_YES && key == KEY_RESIZE) {
      clearok(stdscr, TRUE);
      painter.forget_shown();
      continue;
    }
    if (!controller.handle({static_cast<int>(key), kind == KEY_CODE_YES})) break;
  }
}

}  // namespace df::tui
