// The HTTP/1.1 server (Boost.Beast on Asio threads): limits, correlation ids, errors as envelopes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/router.h"

namespace df::http {

struct ServerLimits {
  std::size_t max_body_bytes = 16 * 1024 * 1024;  // 413 payload_too_large beyond
  std::size_t max_header_bytes = 16 * 1024;       // 431 payload_too_large beyond
  int request_timeout_ms = 30000;  // whole request (headers + body) must arrive within; else 408
  int idle_timeout_ms = 60000;     // keep-alive connections idle longer are closed; a response
                                   // (or one stream chunk) not taken by the client within it too
  int stream_poll_ms = 250;        // how often a StreamSource is polled when nobody wakes it
  int threads = 4;                 // Asio threads running handlers
  // Host names besides the bound address that requests may name in Host and Origin ("*": any);
  // see RequestGuard.
  std::vector<std::string> allowed_hosts;

  // WebSockets: an incoming message over this size closes the connection (close code 1009).
  std::size_t websocket_max_message_bytes = 1024 * 1024;
  // A WebSocket silent for half of this gets a ping; one silent for all of it is closed.
  int websocket_idle_timeout_ms = 300000;
  // A client that lets more outgoing messages (or bytes) pile up than this is disconnected.
  std::size_t websocket_max_queued_messages = 1000;
  std::size_t websocket_max_queued_bytes = 64 * 1024 * 1024;
};

// Called once per finished request (for access logs and metrics).
struct RequestRecord {
  std::string method;
  std::string route;  // the matched pattern ("/v1/jobs/{id}"), or the path when none matched
  int status = 0;      // 101 for a WebSocket, recorded when it ends
  double seconds = 0;  // for a WebSocket, from the upgrade request until the connection ended
  std::string correlation_id;
  // What() of an exception a handler let escape, or why the server cut a WebSocket off (never
  // sent to the client).
  std::string error;
};

class Server {
 public:
  // `on_request` may be empty. The router must outlive the server.
  Server(const Router& router, ServerLimits limits,
         std::function<void(const RequestRecord&)> on_request = {});
  ~Server();  // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving on background threads; port 0 picks a free port. Throws
  // Error(kUnavailable) naming host:port when it cannot bind. A server starts once.
  void start(const std::string& host, uint16_t port);
  uint16_t port() const;  // the bound port (after start)
  // Stops accepting, closes connections (streams too, without their last chunk, so clients see
  // them cut short; WebSockets with close code 1001 "going away", cut off after a second when the
  // client does not answer), joins the threads. Idempotent; not to be called from a handler.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace df::http
