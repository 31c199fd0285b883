// The queue view's text: one line a job with progress bars, percent, ETA and status.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "tui/client_state.h"

namespace df::tui {

// `text` cut or padded with spaces to exactly `cells` cells (a code point a cell).
std::string fit(std::string_view text, int cells);
// A bar of `cells` cells filled to `percent`: '#' and '.' in ASCII; full, partial (eighths) and
// light-shade blocks in UTF-8.
std::string progress_bar(double percent, int cells, bool utf8);
// "-" when unknown, "42s", "3m05s", "2h04m".
std::string duration_text(std::optional<double> seconds);
// The first 8 characters of an id.
std::string short_id(const std::string& id);
// "2/4": the item being worked on and the batch size ("1/?" while the size is unknown).
std::string item_text(const JobView& job);

// id, model, stage, job bar, items, item bar, percent, ETA, status in `width` cells (at least 40).
std::string job_line(const JobView& job, int width, bool utf8);
// The column titles matching job_line.
std::string job_header(int width);

}  // namespace df::tui
