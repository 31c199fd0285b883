// The service's own log lines: echoed to the terminal and kept in a bounded in-memory ring that
// clients read back and follow (ComfyUI's Logs panel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace df::telemetry {

// One line as ComfyUI's log buffer holds it.
struct LogEntry {
  std::string time;     // local time, ISO 8601 with microseconds: "2026-11-22T16:25:10.123456"
  std::string message;  // the line with its trailing "\n"
};

class ServiceLog {
 public:
  using Listener = std::function<void(const LogEntry&)>;

  // Keeps the last `capacity` lines (at least one); echoes info lines to `out`, errors to `err`.
  ServiceLog(size_t capacity, std::ostream& out, std::ostream& err);
  ServiceLog(const ServiceLog&) = delete;
  ServiceLog& operator=(const ServiceLog&) = delete;

  // Stamps `line` (a trailing newline is added when missing, invalid UTF-8 becomes U+FFFD),
  // echoes it, stores it and hands it to every listener. Safe from any thread; lines keep one
  // order in the ring, on the terminal and for listeners.
  void info(std::string_view line);
  void error(std::string_view line);

  // The stored lines, oldest first.
  std::vector<LogEntry> entries() const;

  // Calls `listener` with every line appended from now on, on the appending thread. A listener
  // must not call back into this log. Returns a token for unlisten.
  uint64_t listen(Listener listener);
  // After it returns, the listener is not running and is never called again.
  void unlisten(uint64_t token);

 private:
  void append(std::string_view line, std::ostream& terminal);

  const size_t capacity_;
  std::ostream& out_;
  std::ostream& err_;
  mutable std::mutex mutex_;  // guards everything below and serialises appends
  std::deque<LogEntry> entries_;
  std::map<uint64_t, Listener> listeners_;
  uint64_t next_token_ = 1;
};

// The log of this process (300 lines like ComfyUI's, echoed to stdout and stderr).
ServiceLog& service_log();

}  // namespace df::telemetry
