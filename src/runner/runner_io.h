// Runner I/O: a thread that reads requests from stdin and a locked event writer for stdout.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <istream>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "runner/protocol_messages.h"

namespace df::runner {

// Writes one event per line; safe to call from any thread.
class EventWriter {
 public:
  explicit EventWriter(std::ostream& out) : out_(out) {}
  void emit(const nlohmann::json& event);
  void emit(const Event& event) { emit(to_json(event)); }
  // One kind of event (chosen over the JSON overload, which it converts to as well).
  template <typename Message>
    requires std::is_constructible_v<Event, Message>
  void emit(const Message& event) {
    emit(Event(event));
  }

 private:
  std::ostream& out_;
  std::mutex mutex_;
};

// Reads request lines on its own thread so that `cancel` and `shutdown` take effect while a run is
// executing. Lines that are not a JSON object with a string "type", and malformed cancels, are
// answered with an error event right away; other requests are queued as they came, for the
// session to parse.
class RequestReader {
 public:
  RequestReader(std::istream& in, EventWriter& events);
  ~RequestReader();

  // Blocks until the next request that is not a cancel; nullopt at end of input or after shutdown.
  std::optional<nlohmann::json> next();
  // True once a cancel for `run_id` (or a shutdown) arrived; cleared by begin_run.
  bool cancel_requested(const std::string& run_id) const;
  void begin_run(const std::string& run_id);
  bool shutdown_requested() const { return shutdown_.load(); }

 private:
  void read_loop();

  std::istream& in_;
  EventWriter& events_;
  std::deque<nlohmann::json> queue_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  bool end_of_input_ = false;
  std::atomic<bool> shutdown_{false};
  std::string canceled_run_;
  std::thread thread_;
};

}  // namespace df::runner
