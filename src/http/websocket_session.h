// The server side of a WebSocket: takes over an HTTP connection whose request asked for an upgrade.
#pragma once

#include <chrono>
#include <memory>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/message.h"
#include "http/server.h"
#include "http/server_context.h"

namespace df::http {

// What the HTTP session knows when it hands a connection over.
struct WebSocketUpgrade {
  boost::beast::http::request<boost::beast::http::string_body> request;  // the upgrade request
  std::shared_ptr<WebSocketHandler> handler;
  RequestRecord record;  // method, route and correlation id of the upgrade request
  std::chrono::steady_clock::time_point started;  // when the upgrade request began
};

// Answers the handshake on `stream` (echoing X-Request-ID), then passes messages between the
// client and the handler until either side closes, the client is too slow, or the server stops.
// Reports the request (status 101) when the connection ends. Runs on the stream's executor, which
// must be a strand.
void start_websocket_session(boost::beast::tcp_stream stream, WebSocketUpgrade upgrade,
                             std::shared_ptr<ServerContext> context);

}  // namespace df::http
