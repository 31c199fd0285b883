// HTTP requests and responses as route handlers see them (no Beast types leak out of src/http).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace df::http {

// Whether a route takes a JSON body only with a JSON Content-Type. Browsers send other types
// ("text/plain", forms) across sites without asking first, so the /v1 API refuses them. ComfyUI's
// routes take any type, as ComfyUI does: its web frontend posts settings as "text/plain" and its
// scripts post without a type; cross-site requests to them are refused by their Origin instead.
enum class JsonContentType { kRequired, kAny };

// Who sent a request, as the router's access check found it: without API keys everyone is the
// "default" user with admin rights.
struct Caller {
  std::string user = "default";
  bool admin = true;
  std::string key_id;  // the API key it came with ("" when none)
  int jobs_per_minute = 0;      // the key's limits on new jobs (0: none)
  int max_concurrent_jobs = 0;
  bool has_webhook_secret = false;  // the key has its own secret to sign its jobs' webhooks
  // Whether the caller may see and act on what `owner` created.
  bool may_access(const std::string& owner) const { return admin || owner == user; }
};

struct Request {
  std::string method;                        // "GET", "POST", ...
  std::string target;                        // as sent: "/v1/jobs?status=queued"
  std::string path;                          // percent-decoded path without the query
  std::map<std::string, std::string> query;  // percent-decoded query parameters (last one wins)
  std::map<std::string, std::string> path_params;  // filled by the router from "{name}" segments
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string body;
  std::string correlation_id;  // X-Request-ID when the client sent a sane one, else a fresh id
  Caller caller;               // set by the router's access check before the handler runs

  // The first header named `name` (case-insensitive), or "" when absent.
  std::string header(std::string_view name) const;
  // The body parsed as JSON; throws Error(kUnsupportedMediaType) when `rule` wants a JSON
  // Content-Type it lacks, Error(kBadRequest) naming the parse error when it is not JSON.
  nlohmann::json json_body(JsonContentType rule = JsonContentType::kRequired) const;
};

// A long-lived response body, written chunk by chunk (Server-Sent Events). The server polls it:
// after the headers it calls next_chunk() until `finished`, waiting between empty answers for
// either the poll interval or a wake-up, whichever comes first. The response is chunked and its
// connection closes after it; the server drops the source when the stream ends or the client
// leaves.
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // The next bytes to send ("" when nothing is ready yet). Set `finished` with the last bytes.
  // Runs on a server thread; may block briefly (a database read), never for long.
  virtual std::string next_chunk(bool& finished) = 0;
  // The server hands over a callable that makes it poll again soon; callable from any thread,
  // also after the connection closed (then it does nothing).
  virtual void set_wakeup(std::function<void()> wake) = 0;
};

// The server side of an open WebSocket connection. All methods are safe from any thread and after
// the connection closed (then they do nothing). Messages are sent in the order they were queued.
class WebSocketConnection {
 public:
  virtual ~WebSocketConnection() = default;
  // Queue a message and return at once. A client that lets more pile up than the server's limits
  // (ServerLimits::websocket_max_queued_*) is disconnected.
  virtual void send_text(std::string message) = 0;
  virtual void send_binary(std::string bytes) = 0;
  // Sends what is queued, then starts the close handshake; nothing is queued after it.
  virtual void close() = 0;
  // False once close() was called or the connection ended (on_close follows or came).
  virtual bool is_open() const = 0;
};

// What a route that accepts a WebSocket upgrade does with the connection. Callbacks run on server
// threads, never two at once for one connection.
class WebSocketHandler {
 public:
  virtual ~WebSocketHandler() = default;
  virtual void on_open(std::shared_ptr<WebSocketConnection> connection) = 0;
  virtual void on_text(const std::string& message) = 0;
  virtual void on_close() = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
  std::shared_ptr<StreamSource> stream;  // when set, `body` is ignored and the stream is sent
  // When set and the request asked for a WebSocket upgrade, the server upgrades and hands the
  // connection to the handler (a request without the upgrade gets 426 with code bad_request).
  std::shared_ptr<WebSocketHandler> websocket;

  static Response json(int status, const nlohmann::json& body);
  static Response text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  // A Server-Sent Events response (text/event-stream, no caching, no proxy buffering).
  static Response event_stream(std::shared_ptr<StreamSource> source);
  // Accepts a WebSocket upgrade for `handler` (see `websocket`).
  static Response websocket_upgrade(std::shared_ptr<WebSocketHandler> handler);
};

// The HTTP status an error code maps to (422 validation, 404 not found, 409 conflict, 503 ...).
int http_status_for(ErrorCode code);
// The error envelope {code, message, details, correlation_id} every /v1 error uses, with the
// status of http_status_for() (and an Allow header for method_not_allowed).
Response error_response(const Error& error, const std::string& correlation_id);

}  // namespace df::http
