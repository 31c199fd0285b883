// Text of the queue view's lines.
#include "tui/queue_line.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace df::tui {

namespace {

bool continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Cells of each column for a line `width` cells wide; the model and the job bar share what the
// fixed columns leave.
struct Columns {
  int id = 8;
  int model = 8;
  int stage = 15;
  int bar = 10;
  int items = 5;
  int item_bar = 6;
  int percent = 4;
  int eta = 6;
  int status = 8;

  explicit Columns(int width) {
    const int fixed = id + stage + items + item_bar + percent + eta + status + 8;  // 8 spaces
    const int shared = std::max(width - fixed, 8);
    model = std::clamp(shared / 2, 4, 20);
    bar = std::max(shared - model, 4);
  }
};

std::string join(const std::vector<std::string>& parts) {
  std::string line;
  for (const auto& part : parts) {
    if (!line.empty()) line += ' ';
    line += part;
  }
  return line;
}

std::string right_aligned(const std::string& text, int cells) {
  const int pad = cells - static_cast<int>(text.size());
  return pad > 0 ? std::string(pad, ' ') + text : fit(text, cells);
}

}  // namespace

std::string fit(std::string_view text, int cells) {
  std::string out;
  int used = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t end = i + 1;
    while (end < text.size() && continuation_byte(text[end])) ++end;
    if (used == cells) break;
    out.append(text.substr(i, end - i));
    ++used;
    i = end;
  }
  out.append(static_cast<std::size_t>(std::max(cells - used, 0)), ' ');
  return out;
}

std::string progress_bar(double percent, int cells, bool utf8) {
  const double filled = std::clamp(percent, 0.0, 100.0) / 100.0 * cells;
  const int full = static_cast<int>(std::floor(filled));
  std::string bar;
  if (!utf8) {
    bar.append(full, '#');
    bar.append(cells - full, '.');
    return bar;
  }
  static const char* const kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  for (int i = 0; i < full; ++i) bar += "█";
  int rest = cells - full;
  const int eighths = static_cast<int>((filled - full) * 8);
  if (rest > 0 && eighths > 0) {
    bar += kEighths[eighths];
    --rest;
  }
  for (int i = 0; i < rest; ++i) bar += "░";
  return bar;
}

std::string duration_text(std::optional<double> seconds) {
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0) return "-";
  const long total = std::lround(*seconds);
  char text[32];
  if (total < 60) {
    std::snprintf(text, sizeof text, "%lds", total);
  } else if (total < 3600) {
    std::snprintf(text, sizeof text, "%ldm%02lds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%ldh%02ldm", total / 3600, total / 60 % 60);
  }
  return text;
}

std::string short_id(const std::string& id) { return id.substr(0, 8); }

std::string item_text(const JobView& job) {
  const std::string of = job.count > 0 ? std::to_string(job.count) : "?";
  return std::to_string(job.current_item()) + "/" + of;
}

std::string job_line(const JobView& job, int width, bool utf8) {
  const Columns columns(width);
  const std::string stage = job.finished() || job.stage.empty() ? "-" : job.stage;
  const std::string eta = job.finished() ? "-" : duration_text(job.eta_s);
  return join({fit(short_id(job.id), columns.id),
               fit(job.model.empty() ? "-" : job.model, columns.model), fit(stage, columns.stage),
               progress_bar(job.percent, columns.bar, utf8),
               right_aligned(item_text(job), columns.items),
               progress_bar(job.item_percent(), columns.item_bar, utf8),
               right_aligned(std::to_string(std::lround(job.percent)) + "%", columns.percent),
               right_aligned(eta, columns.eta), fit(job_status_name(job.status), columns.status)});
}

std::string job_header(int width) {
  const Columns columns(width);
  return join({fit("JOB", columns.id), fit("MODEL", columns.model), fit("STAGE", columns.stage),
               fit("PROGRESS", columns.bar), right_aligned("ITEM", columns.items),
               fit("", columns.item_bar), right_aligned("%", columns.percent),
               right_aligned("ETA", columns.eta), fit("STATUS", columns.status)});
}

}  // namespace df::tui
