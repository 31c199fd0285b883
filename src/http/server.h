// The HTTP/1.1 server (Boost.Beast on Asio threads): limits, correlation ids, errors as envelopes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

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
};

// Called once per finished request (for access logs and metrics).
struct RequestRecord {
  std::string method;
  std::string route;  // the matched pattern ("/v1/jobs/{id}"), or the path when none matched
  int status = 0;
  double seconds = 0;
  std::string correlation_id;
  std::string error;  // what() of an exception a handler let escape (never sent to the client)
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
  // them cut short), joins the threads. Idempotent; not to be called from a handler.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace df::http
