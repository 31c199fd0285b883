// Key handling of the terminal client.
#include "tui/controller.h"

#include <algorithm>

#include "tui/curses_include.h"

#include "core/error.h"
#include "tui/queue_line.h"

namespace df::tui {

namespace {

constexpr int kTab = '\t';
constexpr int kEscape = 27;
constexpr int kControlC = 3;

bool is_function(KeyPress key, int code) { return key.function_key && key.code == code; }
bool is_char(KeyPress key, int code) { return !key.function_key && key.code == code; }
bool is_enter(KeyPress key) {
  return is_char(key, '\n') || is_char(key, '\r') || is_function(key, KEY_ENTER);
}
bool is_backspace(KeyPress key) {
  return is_function(key, KEY_BACKSPACE) || is_char(key, 127) || is_char(key, 8);
}

}  // namespace

Controller::Controller(PromptForm& form, const ClientState& state,
                       std::function<void(pixels::Request)> send)
    : form_(form), state_(state), send_(std::move(send)) {}

int Controller::moved(int selected, int count, int delta) {
  if (count == 0) return -1;
  const int from = selected < 0 ? count - 1 : selected;
  return std::clamp(from + delta, 0, count - 1);
}

int Controller::selected_job() const {
  const int count = static_cast<int>(state_.jobs().size());
  if (count == 0) return -1;
  return job_ < 0 ? count - 1 : std::min(job_, count - 1);
}

int Controller::selected_image() const {
  const int count = static_cast<int>(state_.gallery().size());
  if (count == 0) return -1;
  return image_ < 0 ? count - 1 : std::min(image_, count - 1);
}

int Controller::compare_model(int which) const {
  const int count = static_cast<int>(state_.checkpoint_names().size());
  if (count == 0) return -1;
  return std::min(compare_models_[which], count - 1);
}

bool Controller::handle(KeyPress key) {
  bool quit = false;
  if (handle_common(key, &quit)) return !quit;
  switch (screen_) {
    case Screen::kMain: return focus_ == Focus::kForm ? handle_form(key) : handle_queue(key);
    case Screen::kGallery: return handle_gallery(key);
    case Screen::kCompare: return handle_compare(key);
  }
  return true;
}

bool Controller::handle_common(KeyPress key, bool* quit) {
  const bool typing = screen_ == Screen::kMain && focus_ == Focus::kForm && !help_;
  if (is_function(key, KEY_F(10)) || is_char(key, kControlC)) {
    *quit = true;
    return true;
  }
  if (is_function(key, KEY_F(1)) || (!typing && is_char(key, '?'))) {
    help_ = !help_;
    return true;
  }
  if (is_char(key, kEscape)) {
    if (help_) {
      help_ = false;
    } else if (screen_ != Screen::kMain) {
      screen_ = Screen::kMain;
    } else {
      focus_ = focus_ == Focus::kForm ? Focus::kQueue : Focus::kForm;
    }
    return true;
  }
  if (help_) {
    help_ = false;  // any other key closes the help
    *quit = is_char(key, 'q');
    return true;
  }
  return false;
}

bool Controller::handle_form(KeyPress key) {
  if (is_char(key, kTab) || is_function(key, KEY_DOWN)) {
    if (!form_.next_field()) focus_ = Focus::kQueue;
  } else if (is_function(key, KEY_BTAB) || is_function(key, KEY_UP)) {
    if (!form_.previous_field()) focus_ = Focus::kQueue;
  } else if (is_enter(key)) {
    submit();
  } else if (is_backspace(key)) {
    form_.backspace();
  } else if (is_function(key, KEY_LEFT)) {
    form_.cursor_left();
  } else if (is_function(key, KEY_RIGHT)) {
    form_.cursor_right();
  } else if (!key.function_key && key.code >= 0x20) {
    form_.insert(static_cast<char32_t>(key.code));
  }
  return true;
}

bool Controller::handle_queue(KeyPress key) {
  const int jobs = static_cast<int>(state_.jobs().size());
  if (is_char(key, 'q')) return false;
  if (is_char(key, kTab)) {
    focus_ = Focus::kForm;
    form_.focus_on(FormField::kPrompt);
  } else if (is_function(key, KEY_BTAB)) {
    focus_ = Focus::kForm;
    form_.focus_on(FormField::kCount);
  } else if (is_function(key, KEY_UP)) {
    job_ = moved(job_, jobs, -1);
  } else if (is_function(key, KEY_DOWN)) {
    job_ = moved(job_, jobs, 1);
  } else if (is_char(key, 'c')) {
    cancel_selected();
  } else if (is_char(key, 'g')) {
    screen_ = Screen::kGallery;
  } else if (is_char(key, 'm')) {
    screen_ = Screen::kCompare;
  }
  return true;
}

bool Controller::handle_gallery(KeyPress key) {
  const int images = static_cast<int>(state_.gallery().size());
  if (is_char(key, 'q')) return false;
  if (is_function(key, KEY_UP)) {
    image_ = moved(image_, images, -1);
  } else if (is_function(key, KEY_DOWN)) {
    image_ = moved(image_, images, 1);
  } else if (is_char(key, 'g')) {
    screen_ = Screen::kMain;
  } else if (is_char(key, 'm')) {
    screen_ = Screen::kCompare;
  }
  return true;
}

bool Controller::handle_compare(KeyPress key) {
  const int models = static_cast<int>(state_.checkpoint_names().size());
  if (is_char(key, 'q')) return false;
  if (is_char(key, kTab) || is_function(key, KEY_BTAB) || is_function(key, KEY_UP) ||
      is_function(key, KEY_DOWN)) {
    compare_side_ = 1 - compare_side_;
  } else if (models > 0 && (is_function(key, KEY_LEFT) || is_function(key, KEY_RIGHT))) {
    const int step = is_function(key, KEY_LEFT) ? models - 1 : 1;
    compare_models_[compare_side_] = (compare_model(compare_side_) + step) % models;
  } else if (is_enter(key)) {
    submit_comparison();
  } else if (is_char(key, 'm')) {
    screen_ = Screen::kMain;
  } else if (is_char(key, 'g')) {
    screen_ = Screen::kGallery;
  }
  return true;
}

void Controller::submit() {
  try {
    pixels::GenerateRequest request = form_.request();
    notice_ = "submitted " + short_id(request.id);
    send_(std::move(request));
  } catch (const Error& e) {
    notice_ = e.what();
  }
}

void Controller::submit_comparison() {
  const auto models = state_.checkpoint_names();
  if (models.empty()) {
    notice_ = "no models to compare";
    return;
  }
  try {
    auto [first, second] = form_.comparison_requests(models[compare_model(0)],
                                                     models[compare_model(1)]);
    comparison_ = Comparison{first.model, second.model, first.id, second.id};
    notice_ = "comparing " + first.model + " and " + second.model + " (seed " +
              std::to_string(*first.seed) + ")";
    send_(std::move(first));
    send_(std::move(second));
  } catch (const Error& e) {
    notice_ = e.what();
  }
}

void Controller::cancel_selected() {
  const int selected = selected_job();
  if (selected < 0) {
    notice_ = "no job to cancel";
    return;
  }
  const JobView& job = state_.jobs()[static_cast<std::size_t>(selected)];
  if (job.finished()) {
    notice_ = "job " + short_id(job.id) + " is " + job_status_name(job.status);
    return;
  }
  notice_ = "canceling " + short_id(job.id);
  send_(pixels::CancelRequest{job.id});
}

}  // namespace df::tui
