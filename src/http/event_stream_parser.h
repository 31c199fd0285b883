// An incremental text/event-stream parser (WHATWG Server-Sent Events rules) fed bytes as they
// arrive.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "http/client.h"

namespace df::http {

class EventStreamParser {
 public:
  using EventCallback = std::function<bool(const ServerSentEvent&)>;

  // Consumes the next bytes of the stream and calls `on_event` for every event they complete.
  // Returns false as soon as `on_event` does (the rest of `bytes` is then not parsed).
  bool feed(std::string_view bytes, const EventCallback& on_event);

 private:
  bool consume(std::string_view bytes, const EventCallback& on_event);
  bool process_line(std::string_view line, const EventCallback& on_event);
  bool dispatch(const EventCallback& on_event);

  std::string line_;           // the current line so far
  bool after_cr_ = false;      // the last byte was '\r' (a following '\n' belongs to it)
  bool at_start_ = true;       // a UTF-8 byte order mark may still come (it is skipped)
  std::string held_start_;     // the first bytes, held while they may be a byte order mark
  std::string last_event_id_;  // persists across events, as the standard says
  std::string event_type_;
  std::string data_;
};

}  // namespace df::http
