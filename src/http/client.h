// A small blocking HTTP/1.1 client (plain http://) for the CLI and tools: requests and SSE streams.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::http {

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string header(std::string_view name) const;  // case-insensitive, "" when absent
  nlohmann::json json() const;  // throws Error(kBadRequest) when the body is not JSON
};

struct ServerSentEvent {
  std::string id;     // last "id:" seen for this event ("" when none)
  std::string event;  // "event:" field ("message" when absent)
  std::string data;   // "data:" lines joined by '\n'
};

class Client {
 public:
  // `base_url` like "http://127.0.0.1:8188" (a trailing '/' is ignored). Throws
  // Error(kInvalidArgument) for anything but http://host[:port].
  explicit Client(std::string base_url, int timeout_ms = 30000);

  // Sends "Authorization: Bearer KEY" with every request ("" sends none).
  void set_api_key(std::string key) { api_key_ = std::move(key); }

  // One request on a fresh connection; `target` is a path with an optional query. Throws
  // Error(kUnavailable) when the server cannot be reached or the connection breaks off, each step
  // (connect, send, receive) bounded by the timeout.
  ClientResponse request(const std::string& method, const std::string& target,
                         const std::string& body = "",
                         const std::vector<std::pair<std::string, std::string>>& headers = {});
  ClientResponse get(const std::string& target) { return request("GET", target); }
  ClientResponse post_json(const std::string& target, const nlohmann::json& body,
                           const std::vector<std::pair<std::string, std::string>>& headers = {});

  // GETs an event stream and calls `on_event` for each event (comments/heartbeats are skipped)
  // as soon as the event is complete, until it returns false or the server ends the stream. The
  // timeout bounds each wait for more bytes. Returns the HTTP status; a non-200 answer's body is
  // put in `error_body` without calling on_event.
  int stream_events(const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    const std::function<bool(const ServerSentEvent&)>& on_event,
                    std::string* error_body = nullptr);

 private:
  std::string host_;
  std::string port_;
  int timeout_ms_;
  std::string api_key_;
};

}  // namespace df::http
