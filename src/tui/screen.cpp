// The terminal client's screens, drawn with curses.
#include "tui/screen.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "tui/curses_include.h"

#include "tui/queue_line.h"

namespace df::tui {

namespace {

constexpr int kSeedCells = 12;

// Where things go on a screen of `rows` x `cols`.
struct Frame {
  int rows = 24;
  int cols = 80;
  int width() const { return cols - 1; }  // the last column stays empty (no wrap at the edge)
  int notice_row() const { return rows - 2; }
  int help_row() const { return rows - 1; }
};

void put(int row, int col, const std::string& text, int cells, attr_t attributes = A_NORMAL) {
  if (cells <= 0) return;
  attr_on(attributes, nullptr);
  mvaddstr(row, col, fit(text, cells).c_str());
  attr_off(attributes, nullptr);
}

std::string base_name(const std::string& path_or_url) {
  const std::string path = path_or_url.substr(0, path_or_url.find('?'));
  return std::filesystem::path(path).filename().string();
}

// The part of a field's text around its cursor (in code points) that fits in `cells`, and the
// cursor's cell in it.
std::pair<std::string, int> visible_text(const std::string& text, std::size_t cursor, int cells) {
  const int first = std::max(0, static_cast<int>(cursor) - cells + 1);
  std::string shown;
  int index = -1;
  for (const char byte : text) {
    if ((static_cast<unsigned char>(byte) & 0xC0) != 0x80) ++index;
    if (index >= first) shown.push_back(byte);
  }
  return {shown, static_cast<int>(cursor) - first};
}

class ScreenPainter {
 public:
  explicit ScreenPainter(const ScreenContext& context) : c_(context) {
    frame_ = {std::max(getmaxy(stdscr), 10), std::max(getmaxx(stdscr), 40)};
  }

  void draw() {
    werase(stdscr);
    status_line();
    switch (c_.controller.screen()) {
      case Screen::kMain: main_screen(); break;
      case Screen::kGallery: gallery_screen(); break;
      case Screen::kCompare: compare_screen(); break;
    }
    notice_line();
    help_line();
    if (c_.controller.help_shown()) help_box();
    place_cursor();
  }

 private:
  bool images() const { return c_.painter.protocol() != ImageProtocol::kNone; }

  void status_line() {
    std::string line = " Dream Forge | " + c_.link + " | " + connection_name(c_.state.connection());
    if (const auto& status = c_.state.status()) {
      line += " | queue " + std::to_string(status->queue_size) + ", active " +
              std::to_string(status->active_jobs) + " | v" + status->version;
    }
    put(0, 0, line, frame_.cols, A_REVERSE);
  }

  void notice_line() {
    const std::string& error = c_.state.last_error();
    const std::string& notice = c_.controller.notice();
    std::string line;
    if (!notice.empty()) line = notice;
    if (!error.empty()) line += (line.empty() ? "" : " | ") + std::string("error: ") + error;
    put(frame_.notice_row(), 0, line, frame_.width(), error.empty() ? A_NORMAL : A_BOLD);
  }

  void help_line() {
    const std::string arrows = c_.utf8 ? "↑↓" : "Up/Dn";
    std::string help;
    switch (c_.controller.screen()) {
      case Screen::kMain:
        help = c_.controller.focus() == Focus::kForm
                   ? "Tab next field  Enter submit  <-> model  Esc jobs  F1 help  F10 quit"
                   : arrows + " select  c cancel  g gallery  m compare  Tab edit  ? help  q quit";
        break;
      case Screen::kGallery:
        help = arrows + " select  g back  m compare  Esc back  ? help  q quit";
        break;
      case Screen::kCompare:
        help = "<-> model  Tab A/B  Enter run both  g gallery  Esc back  ? help  q quit";
        break;
    }
    put(frame_.help_row(), 0, help, frame_.width(), A_REVERSE);
  }

  // A labelled field "Label [text]" at row/col with `cells` for the text; returns the column after.
  int field(int row, int col, FormField which, int cells) {
    const std::string label = std::string(form_field_label(which)) + " ";
    put(row, col, label, static_cast<int>(label.size()));
    const int at = col + static_cast<int>(label.size());
    const bool focused = editing() && c_.form.focus() == which;
    if (which == FormField::kModel) {
      const std::string model = c_.form.model().empty() ? "(none yet)" : c_.form.model();
      put(row, at, "< " + model + " >", cells + 2, focused ? A_REVERSE : A_UNDERLINE);
      return at + cells + 3;
    }
    const auto [text, cursor_cell] =
        visible_text(c_.form.text(which), focused ? c_.form.cursor() : 0, cells);
    put(row, at, "[", 1);
    put(row, at + 1, text, cells, focused ? A_REVERSE : A_UNDERLINE);
    put(row, at + 1 + cells, "]", 1);
    if (focused) cursor_ = {row, at + 1 + cursor_cell};
    return at + cells + 3;
  }

  bool editing() const {
    return c_.controller.screen() == Screen::kMain && c_.controller.focus() == Focus::kForm &&
           !c_.controller.help_shown();
  }

  void form() {
    field(1, 0, FormField::kPrompt, frame_.width() - 9);
    const int count_col = std::max(frame_.width() - 16, 40);
    field(2, 0, FormField::kModel, count_col - 10);
    field(2, count_col, FormField::kCount, 4);
    int col = field(3, 0, FormField::kWidth, 5);
    col = field(3, col, FormField::kHeight, 5);
    col = field(3, col, FormField::kSteps, 4);
    col = field(3, col, FormField::kCfg, 5);
    field(3, col, FormField::kSeed, std::min(kSeedCells, frame_.width() - col - 7));
  }

  void main_screen() {
    form();
    const int first_row = 5;
    const int last_row =
        images() ? std::max(first_row, frame_.rows / 2 - 2) : frame_.notice_row() - 1;
    put(4, 0, job_header(frame_.width()), frame_.width(), A_BOLD);
    const auto& jobs = c_.state.jobs();
    const int visible = last_row - first_row + 1;
    const int selected = c_.controller.selected_job();
    const int top = std::max(0, selected - visible + 1);
    for (int i = 0; i < visible && top + i < static_cast<int>(jobs.size()); ++i) {
      const bool chosen = top + i == selected;
      const attr_t look = !chosen ? A_NORMAL
                          : c_.controller.focus() == Focus::kQueue ? A_REVERSE : A_BOLD;
      put(first_row + i, 0, job_line(jobs[top + i], frame_.width(), c_.utf8), frame_.width(), look);
    }
    if (jobs.empty()) {
      put(first_row, 0, "No jobs yet: type a prompt and press Enter.", frame_.width());
    }
    if (images() && selected >= 0) {
      job_preview(jobs[selected],
                  {last_row + 2, 0, frame_.notice_row() - last_row - 2, frame_.width()});
    }
  }

  // The selected job's latest latent preview while it runs, its first image once done.
  void job_preview(const JobView& job, CellBox box) {
    if (!job.preview_path.empty() && !job.finished()) {
      put(box.row - 1, 0, "preview of " + short_id(job.id) + ", step " +
                              std::to_string(job.preview_step), frame_.width(), A_BOLD);
      image(job.preview_path, job.preview_step, box);
    } else if (!job.image_paths.empty()) {
      put(box.row - 1, 0, short_id(job.id) + ": " + base_name(job.image_paths.front()),
          frame_.width(), A_BOLD);
      image(job.image_paths.front(), 0, box);
    }
  }

  void image(const std::string& source, int version, CellBox box) {
    if (const Image8* picture = c_.images.get(source, version)) {
      c_.painter.draw(*picture, source + "#" + std::to_string(version), box);
    } else {
      put(box.row, box.col, "cannot show: " + c_.images.error(), box.cols);
    }
  }

  void gallery_screen() {
    const auto& gallery = c_.state.gallery();
    put(1, 0, "GALLERY  " + std::to_string(gallery.size()) + " image(s)", frame_.width(), A_BOLD);
    const int list_cols = images() ? frame_.width() / 2 : frame_.width();
    const int detail_rows = 4;
    const int first_row = 2;
    const int last_row = frame_.notice_row() - detail_rows - 1;
    const int visible = last_row - first_row + 1;
    const int selected = c_.controller.selected_image();
    const int top = std::max(0, selected - visible + 1);
    for (int i = 0; i < visible && top + i < static_cast<int>(gallery.size()); ++i) {
      const GalleryEntry& entry = gallery[top + i];
      const std::string line = short_id(entry.job_id) + " " + size_text(entry) + " " +
                               fit(entry.model.empty() ? "-" : entry.model, 10) + " " +
                               fit(duration_text(entry.duration_s), 6) + " " +
                               base_name(entry.image_path);
      put(first_row + i, 0, line, list_cols, top + i == selected ? A_REVERSE : A_NORMAL);
    }
    if (gallery.empty()) put(first_row, 0, "No finished images yet.", list_cols);
    if (selected < 0) return;
    const GalleryEntry& entry = gallery[selected];
    const int detail_row = last_row + 1;
    put(detail_row, 0, "job " + entry.job_id + "  " + size_text(entry) + "  " +
                           (entry.model.empty() ? "" : entry.model + "  ") +
                           duration_text(entry.duration_s), frame_.width(), A_BOLD);
    wrapped(detail_row + 1, entry.image_path, detail_rows - 1);
    if (images()) {
      image(entry.image_path, 0,
            {first_row, list_cols + 1, last_row - first_row + 1, frame_.width() - list_cols - 1});
    }
  }

  static std::string size_text(const GalleryEntry& entry) {
    if (entry.width <= 0) return "?x?";
    return std::to_string(entry.width) + "x" + std::to_string(entry.height);
  }

  // `text` over up to `rows` lines of the full width.
  void wrapped(int row, const std::string& text, int rows) {
    const auto width = static_cast<std::size_t>(frame_.width());
    for (int i = 0; i < rows && i * width < text.size(); ++i) {
      put(row + i, 0, text.substr(i * width, width), frame_.width());
    }
  }

  void compare_screen() {
    const auto models = c_.state.checkpoint_names();
    put(1, 0, "COMPARE  the editor's prompt, size, steps, cfg and seed on two models",
        frame_.width(), A_BOLD);
    int col = 0;
    for (int side = 0; side < 2; ++side) {
      const int index = c_.controller.compare_model(side);
      const std::string label = side == 0 ? "Model A " : "Model B ";
      const std::string name = index < 0 ? "(none yet)" : models[index];
      put(2, col, label, 8);
      put(2, col + 8, "< " + name + " >", 28,
          c_.controller.compare_side() == side ? A_REVERSE : A_UNDERLINE);
      col += 38;
    }
    put(3, 0, "Prompt: " + c_.form.text(FormField::kPrompt), frame_.width());
    const auto& comparison = c_.controller.comparison();
    if (!comparison) {
      put(5, 0, "Press Enter to run the prompt on both models.", frame_.width());
      return;
    }
    const int half = frame_.width() / 2;
    compare_column(comparison->model_a, comparison->request_a, 0, half - 1);
    compare_column(comparison->model_b, comparison->request_b, half + 1, frame_.width() - half - 1);
  }

  void compare_column(const std::string& model, const std::string& request_id, int col, int cells) {
    put(5, col, model, cells, A_BOLD);
    const std::string job_id = c_.state.job_for_request(request_id);
    const JobView* job = job_id.empty() ? nullptr : c_.state.job(job_id);
    if (job == nullptr) {
      put(6, col, "waiting for the server", cells);
      return;
    }
    put(6, col, std::string(job_status_name(job->status)) + " " +
                    std::to_string(static_cast<int>(job->percent)) + "% " +
                    (job->finished() ? "" : job->stage), cells);
    put(7, col, progress_bar(job->percent, cells, c_.utf8), cells);
    put(8, col, "duration " + duration_text(job->duration_s), cells);
    const std::string source = !job->image_paths.empty() ? job->image_paths.front()
                                                         : job->preview_path;
    put(9, col, job->error.empty() ? base_name(source) : job->error, cells);
    if (images() && !source.empty()) {
      image(source, job->image_paths.empty() ? job->preview_step : 0,
            {10, col, frame_.notice_row() - 10, cells});
    }
  }

  void help_box() {
    static const std::vector<std::string> kLines = {
        "Dream Forge terminal client",
        "",
        "Tab / Shift-Tab   next / previous field; from the last, the job list",
        "Enter             submit the prompt (in the editor)",
        "Left / Right      move in a field; choose the model",
        "Esc               editor <-> job list; back to the main screen",
        "Up / Down         select a job or an image",
        "c                 cancel the selected job",
        "g                 gallery of finished images",
        "m                 compare two models on one prompt and seed",
        "F1 or ?           this help (any key closes it)",
        "q or F10          quit",
    };
    const int width = std::min(frame_.width() - 2, 72);
    const int top = std::max(1, (frame_.rows - static_cast<int>(kLines.size())) / 2 - 1);
    const int left = std::max(0, (frame_.width() - width) / 2);
    put(top, left, "+" + std::string(width - 2, '-') + "+", width);
    for (std::size_t i = 0; i < kLines.size(); ++i) {
      put(top + 1 + static_cast<int>(i), left, "| " + fit(kLines[i], width - 4) + " |", width);
    }
    put(top + 1 + static_cast<int>(kLines.size()), left, "+" + std::string(width - 2, '-') + "+",
        width);
  }

  void place_cursor() {
    if (editing() && cursor_.first > 0) {
      curs_set(1);
      wmove(stdscr, cursor_.first, cursor_.second);
    } else {
      curs_set(0);
    }
  }

  const ScreenContext& c_;
  Frame frame_;
  std::pair<int, int> cursor_{0, 0};
};

}  // namespace

void draw_screen(const ScreenContext& context) { ScreenPainter(context).draw(); }

}  // namespace df::tui
