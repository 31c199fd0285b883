// ComfyUI's Logs panel on the service log: GET /internal/logs, GET /internal/logs/raw and
// PATCH /internal/logs/subscribe, with "logs" WebSocket messages to the subscribed clients.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "http/router.h"
#include "telemetry/service_log.h"

namespace df::api {

// The columns and rows ComfyUI reports for its terminal.
struct TerminalSize {
  int cols = 80;
  int rows = 24;
  bool operator==(const TerminalSize&) const = default;
};

// The size of the terminal on standard output, or 80 x 24 when it is not a terminal.
TerminalSize stdout_terminal_size();

class ComfyLogs {
 public:
  // Sends a message to the WebSocket client with that id; false when no such client is connected.
  using SendToClient =
      std::function<bool(const std::string& client_id, const nlohmann::json& message)>;

  // Follows `log` until destroyed. `terminal_size` is asked for the size each time it is reported.
  ComfyLogs(telemetry::ServiceLog& log, SendToClient send,
            std::function<TerminalSize()> terminal_size = stdout_terminal_size);
  ~ComfyLogs();
  ComfyLogs(const ComfyLogs&) = delete;
  ComfyLogs& operator=(const ComfyLogs&) = delete;

  // The three /internal/logs routes (internal routes have no "/api" twin):
  //  * GET /internal/logs: a JSON string of every line as "<time> - <line>";
  //  * GET /internal/logs/raw: {"entries": [{"t", "m"}], "size": {"cols", "rows"}};
  //  * PATCH /internal/logs/subscribe {"clientId": str, "enabled": bool}: 200 empty; 400 for
  //    another body.
  // Every new line then goes to each subscribed client as {"type": "logs", "data": {"entries":
  // [{"t", "m"}], "size": {"cols", "rows"} when it changed since last reported, else null}};
  // a client that is no longer connected is unsubscribed.
  void register_routes(http::Router& router);

 private:
  void forward(const telemetry::LogEntry& entry);
  // The current size, and whether it differs from the one reported before.
  std::pair<TerminalSize, bool> update_size();

  telemetry::ServiceLog& log_;
  SendToClient send_;
  std::function<TerminalSize()> terminal_size_;
  std::mutex mutex_;  // guards the two below
  std::set<std::string> subscribers_;
  std::optional<TerminalSize> reported_size_;
  uint64_t listener_token_ = 0;
};

}  // namespace df::api
