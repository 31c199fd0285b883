// The terminal client's keys: which screen and field they act on, and the requests they send.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "tui/client_state.h"
#include "tui/prompt_form.h"

namespace df::tui {

enum class Screen { kMain, kGallery, kCompare };
enum class Focus { kForm, kQueue };  // on the main screen

// Two jobs with one prompt and seed on two models, shown side by side.
struct Comparison {
  std::string model_a;
  std::string model_b;
  std::string request_a;  // the generate requests' ids (ClientState::job_for_request)
  std::string request_b;
};

// A key as curses' get_wch gives it: a character, or a KEY_* code when `function_key`.
struct KeyPress {
  int code = 0;
  bool function_key = false;
};

class Controller {
 public:
  Controller(PromptForm& form, const ClientState& state,
             std::function<void(pixels::Request)> send);

  // Acts on a key; false when it quits (q outside a text field, F10, Ctrl-C).
  bool handle(KeyPress key);

  Screen screen() const { return screen_; }
  Focus focus() const { return focus_; }
  bool help_shown() const { return help_; }
  // Indexes into the state's jobs and gallery (-1 when empty); the newest until arrows move them.
  int selected_job() const;
  int selected_image() const;
  // The comparison's model choices (indexes into the state's checkpoint names) and which of the
  // two the arrows change.
  int compare_model(int which) const;
  int compare_side() const { return compare_side_; }
  const std::optional<Comparison>& comparison() const { return comparison_; }
  // What the last key did or why it did nothing ("submitted 0190ab12", "Steps must be 1..10000").
  const std::string& notice() const { return notice_; }

 private:
  bool handle_form(KeyPress key);
  bool handle_queue(KeyPress key);
  bool handle_gallery(KeyPress key);
  bool handle_compare(KeyPress key);
  bool handle_common(KeyPress key, bool* quit);
  void submit();
  void submit_comparison();
  void cancel_selected();
  static int moved(int selected, int count, int delta);

  PromptForm& form_;
  const ClientState& state_;
  std::function<void(pixels::Request)> send_;
  Screen screen_ = Screen::kMain;
  Focus focus_ = Focus::kForm;
  bool help_ = false;
  int job_ = -1;    // -1: follow the newest
  int image_ = -1;  // -1: follow the newest
  int compare_models_[2] = {0, 1};
  int compare_side_ = 0;
  std::optional<Comparison> comparison_;
  std::string notice_;
};

}  // namespace df::tui
