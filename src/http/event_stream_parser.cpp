// An incremental text/event-stream parser (WHATWG Server-Sent Events rules) fed bytes as they
// arrive.
#include "http/event_stream_parser.h"

namespace df::http {

namespace {
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
}  // namespace

bool EventStreamParser::feed(std::string_view bytes, const EventCallback& on_event) {
  if (!at_start_) return consume(bytes, on_event);
  held_start_.append(bytes);
  if (held_start_.size() < kByteOrderMark.size() && kByteOrderMark.starts_with(held_start_)) {
    return true;  // maybe a byte order mark: wait for its other bytes
  }
  at_start_ = false;
  std::string text = std::move(held_start_);
  if (text.starts_with(kByteOrderMark)) text.erase(0, kByteOrderMark.size());
  return consume(text, on_event);
}

bool EventStreamParser::consume(std::string_view bytes, const EventCallback& on_event) {
  for (char c : bytes) {
    if (c == '\n' && after_cr_) {
      after_cr_ = false;
      continue;
    }
    after_cr_ = c == '\r';
    if (c == '\r' || c == '\n') {
      std::string line = std::move(line_);
      line_.clear();
      if (!process_line(line, on_event)) return false;
    } else {
      line_ += c;
    }
  }
  return true;
}

bool EventStreamParser::process_line(std::string_view line, const EventCallback& on_event) {
  if (line.empty()) return dispatch(on_event);
  if (line.front() == ':') return true;  // a comment (heartbeats)
  std::size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
  }
  if (field == "event") {
    event_type_ = value;
  } else if (field == "data") {
    data_.append(value);
    data_ += '\n';
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_ = value;
  }
  // "retry" and unknown fields are ignored: the caller decides about reconnecting.
  return true;
}

bool EventStreamParser::dispatch(const EventCallback& on_event) {
  if (data_.empty()) {
    event_type_.clear();
    return true;
  }
  ServerSentEvent event;
  event.id = last_event_id_;
  event.event = event_type_.empty() ? "message" : event_type_;
  event.data = std::move(data_);
  event.data.pop_back();  // the '\n' after the last data line
  data_.clear();
  event_type_.clear();
  return on_event(event);
}

}  // namespace df::http
