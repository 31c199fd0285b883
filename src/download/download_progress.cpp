// Download progress rendering.
#include "download/download_progress.h"

#include <algorithm>
#include <cinttypes>

namespace df::download {
namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr int kBarWidth = 30;

}  // namespace

std::string human_bytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1000 && unit < 4) {
    value /= 1000;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
  return text;
}

int64_t DownloadProgress::done_bytes() const {
  int64_t done = 0;
  for (const auto& [path, bytes] : bytes_) done += bytes;
  return done;
}

void DownloadProgress::print_line(const std::string& line) {
  if (terminal_ && bar_drawn_) std::fputs("\r\033[K", out_);
  std::fprintf(out_, "%s\n", line.c_str());
  bar_drawn_ = false;
  if (terminal_) draw_bar(/*force=*/true);
  std::fflush(out_);
}

void DownloadProgress::draw_bar(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && last_draw_ && now - *last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  const int64_t done = done_bytes();
  const double fraction =
      total_bytes_ > 0 ? std::min(1.0, static_cast<double>(done) / total_bytes_) : 0;
  std::string bar(static_cast<size_t>(fraction * kBarWidth), '#');
  bar.resize(kBarWidth, '.');
  const double seconds = std::chrono::duration<double>(now - started_).count();
  const auto rate = seconds > 0 ? static_cast<int64_t>(done / seconds) : 0;
  std::fprintf(out_, "\r\033[K[%s] %3d%% %s of %s  %d/%d files  %s/s", bar.c_str(),
               static_cast<int>(fraction * 100), human_bytes(done).c_str(),
               human_bytes(total_bytes_).c_str(), files_done_, files_, human_bytes(rate).c_str());
  std::fflush(out_);
  bar_drawn_ = true;
}

void DownloadProgress::begin(const std::string& model_id, int files, int64_t total_bytes) {
  std::lock_guard lock(mutex_);
  files_ = files;
  total_bytes_ = total_bytes;
  started_ = std::chrono::steady_clock::now();
  print_line("downloading " + model_id + ": " + std::to_string(files) + " files, " +
             human_bytes(total_bytes));
}

void DownloadProgress::file_started(const std::string& path, int64_t size, int64_t resumed_from) {
  std::lock_guard lock(mutex_);
  bytes_[path] = resumed_from;
  if (resumed_from > 0) {
    print_line("resuming " + path + " at " + human_bytes(resumed_from) + " of " +
               human_bytes(size));
  } else if (!terminal_) {
    print_line("fetching " + path + " (" + human_bytes(size) + ")");
  }
}

void DownloadProgress::file_progress(const std::string& path, int64_t bytes) {
  std::lock_guard lock(mutex_);
  bytes_[path] = bytes;
  if (terminal_) {
    draw_bar(/*force=*/false);
    return;
  }
  const int percent = total_bytes_ > 0 ? static_cast<int>(done_bytes() * 100 / total_bytes_) : 0;
  if (percent >= next_plain_percent_ && percent < 100) {
    next_plain_percent_ = percent / 10 * 10 + 10;
    print_line("progress " + std::to_string(percent) + "% (" + human_bytes(done_bytes()) + " of " +
               human_bytes(total_bytes_) + ")");
  }
}

void DownloadProgress::file_retrying(const std::string& path, const std::string& why,
                                     double delay_s) {
  std::lock_guard lock(mutex_);
  char delay[32];
  std::snprintf(delay, sizeof delay, "%.1f", delay_s);
  print_line("retrying " + path + " (" + why + ") in " + delay + " s");
}

void DownloadProgress::file_finished(const std::string& path, int64_t size, bool transferred) {
  std::lock_guard lock(mutex_);
  bytes_[path] = size;
  ++files_done_;
  print_line((transferred ? "verified " : "already fetched ") + path);
}

void DownloadProgress::message(const std::string& line) {
  std::lock_guard lock(mutex_);
  print_line(line);
}

void DownloadProgress::finish() {
  std::lock_guard lock(mutex_);
  if (terminal_ && bar_drawn_) {
    std::fputs("\r\033[K", out_);
    std::fflush(out_);
    bar_drawn_ = false;
  }
}

}  // namespace df::download
