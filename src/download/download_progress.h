// Download progress for people: one redrawn bar on a terminal, plain lines anywhere else.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace df::download {

// Thread-safe: transfers running in parallel report into one display.
class DownloadProgress {
 public:
  DownloadProgress(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

  void begin(const std::string& model_id, int files, int64_t total_bytes);
  void file_started(const std::string& path, int64_t size, int64_t resumed_from);
  void file_progress(const std::string& path, int64_t bytes);
  void file_retrying(const std::string& path, const std::string& why, double delay_s);
  void file_finished(const std::string& path, int64_t size, bool transferred);
  // A line of its own (the bar is redrawn below it).
  void message(const std::string& line);
  void finish();

 private:
  void print_line(const std::string& line);  // mutex held
  void draw_bar(bool force);                 // mutex held
  int64_t done_bytes() const;                // mutex held

  std::FILE* out_;
  bool terminal_;
  std::mutex mutex_;
  std::map<std::string, int64_t> bytes_;
  int files_ = 0;
  int files_done_ = 0;
  int64_t total_bytes_ = 0;
  int next_plain_percent_ = 10;
  bool bar_drawn_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> last_draw_;  // none: never drawn
};

// "1.5 MB", "12 KB", "873 B".
std::string human_bytes(int64_t bytes);

}  // namespace df::download
