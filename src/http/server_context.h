// What the HTTP server shares with its connections: routes, limits, the request log, and the
// registry of open connections that stop() closes.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "http/request_guard.h"
#include "http/router.h"
#include "http/server.h"

namespace df::http {

// A connection the server closes when it stops (a plain HTTP session or a WebSocket).
class ServerConnection {
 public:
  virtual ~ServerConnection() = default;
  // Ends the connection soon; callable from any thread.
  virtual void close() = 0;
};

// Connections hold the context by shared_ptr, so it outlives them. Thread-safe.
class ServerContext {
 public:
  ServerContext(const Router& router, ServerLimits limits,
                std::function<void(const RequestRecord&)> on_request);

  const Router& router() const { return router_; }
  const ServerLimits& limits() const { return limits_; }
  // The Host and Origin checks, known once the server is bound (set before the first connection).
  void set_guard(RequestGuard guard) { guard_.emplace(std::move(guard)); }
  const RequestGuard& guard() const { return *guard_; }

  // Registers a connection for stop(); returns false (registering nothing) once stopping.
  bool add(const ServerConnection* key, std::weak_ptr<ServerConnection> connection);
  void remove(const ServerConnection* key);
  bool stopping() const;
  // Marks the server stopping and returns the connections registered at that moment.
  std::vector<std::weak_ptr<ServerConnection>> begin_stop();

  // Hands a finished request to the request log; a failing log does not disturb the connection.
  void report(const RequestRecord& record) const;

 private:
  const Router& router_;
  const ServerLimits limits_;
  const std::function<void(const RequestRecord&)> on_request_;
  std::optional<RequestGuard> guard_;

  mutable std::mutex mutex_;  // guards what follows
  bool stopping_ = false;
  std::unordered_map<const ServerConnection*, std::weak_ptr<ServerConnection>> connections_;
};

}  // namespace df::http
