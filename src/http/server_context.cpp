// What the HTTP server shares with its connections: routes, limits, request log, open connections.
#include "http/server_context.h"

namespace df::http {

ServerContext::ServerContext(const Router& router, ServerLimits limits,
                             std::function<void(const RequestRecord&)> on_request)
    : router_(router), limits_(limits), on_request_(std::move(on_request)) {}

bool ServerContext::add(const ServerConnection* key, std::weak_ptr<ServerConnection> connection) {
  std::lock_guard lock(mutex_);
  if (stopping_) return false;
  connections_.emplace(key, std::move(connection));
  return true;
}

void ServerContext::remove(const ServerConnection* key) {
  std::lock_guard lock(mutex_);
  connections_.erase(key);
}

bool ServerContext::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

std::vector<std::weak_ptr<ServerConnection>> ServerContext::begin_stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  std::vector<std::weak_ptr<ServerConnection>> open;
  open.reserve(connections_.size());
  for (const auto& [key, connection] : connections_) open.push_back(connection);
  return open;
}

void ServerContext::report(const RequestRecord& record) const {
  if (!on_request_) return;
  try {
    on_request_(record);
  } catch (...) {
    // The response is already out; a failing access log must not take the connection down.
  }
}

}  // namespace df::http
