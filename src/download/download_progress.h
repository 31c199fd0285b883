// Download progress: what an install reports, and its display for people (a redrawn bar on a
// terminal, plain lines anywhere else).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace df::download {

// What an install reports while it fetches; implementations are thread-safe: transfers running
// in parallel report into one observer.
class DownloadObserver {
 public:
  virtual ~DownloadObserver() = default;
  virtual void begin(const std::string& model_id, int files, int64_t total_bytes) = 0;
  virtual void file_started(const std::string& path, int64_t size, int64_t resumed_from) = 0;
  // `bytes`: the file's bytes on disk so far.
  virtual void file_progress(const std::string& path, int64_t bytes) = 0;
  virtual void file_retrying(const std::string& path, const std::string& why, double delay_s) = 0;
  virtual void file_finished(const std::string& path, int64_t size, bool transferred) = 0;
  virtual void finish() = 0;
  // Whether whoever asked wants the transfers stopped (they end with Error(kCanceled)).
  virtual bool canceled() const { return false; }
};

// Progress for a person: one redrawn bar on a terminal, plain lines anywhere else.
class DownloadProgress : public DownloadObserver {
 public:
  DownloadProgress(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

  void begin(const std::string& model_id, int files, int64_t total_bytes) override;
  void file_started(const std::string& path, int64_t size, int64_t resumed_from) override;
  void file_progress(const std::string& path, int64_t bytes) override;
  void file_retrying(const std::string& path, const std::string& why, double delay_s) override;
  void file_finished(const std::string& path, int64_t size, bool transferred) override;
  // A line of its own (the bar is redrawn below it).
  void message(const std::string& line);
  void finish() override;

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
