// ComfyUI's Logs panel on the service log: the /internal/logs routes and "logs" messages.
#include "api/comfy_logs.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include "api/comfy_router.h"
#include "core/error.h"

namespace df::api {
namespace {

using nlohmann::json;

json entry_json(const telemetry::LogEntry& entry) {
  return {{"t", entry.time}, {"m", entry.message}};
}

json size_json(const TerminalSize& size) { return {{"cols", size.cols}, {"rows", size.rows}}; }

struct Subscription {
  std::string client_id;
  bool enabled = false;
};

Subscription parse_subscription(const http::Request& request) {
  const json body = request.json_body(http::JsonContentType::kAny);
  if (!body.is_object() || !body.contains("clientId") || !body["clientId"].is_string() ||
      !body.contains("enabled") || !body["enabled"].is_boolean()) {
    throw Error(ErrorCode::kBadRequest,
                "the body must be {\"clientId\": <WebSocket client id>, \"enabled\": true|false}");
  }
  return {body["clientId"].get<std::string>(), body["enabled"].get<bool>()};
}

}  // namespace

TerminalSize stdout_terminal_size() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_col == 0 || size.ws_row == 0) {
    return {};
  }
  return {size.ws_col, size.ws_row};
}

ComfyLogs::ComfyLogs(telemetry::ServiceLog& log, SendToClient send,
                     std::function<TerminalSize()> terminal_size)
    : log_(log), send_(std::move(send)), terminal_size_(std::move(terminal_size)) {
  listener_token_ = log_.listen([this](const telemetry::LogEntry& entry) { forward(entry); });
}

ComfyLogs::~ComfyLogs() { log_.unlisten(listener_token_); }

void ComfyLogs::register_routes(http::Router& router) {
  router.add("GET", "/internal/logs", [this](http::Request&) {
    std::string text;
    for (const telemetry::LogEntry& entry : log_.entries()) {
      text += entry.time + " - " + entry.message;
    }
    return http::Response::json(200, text);
  });
  router.add("GET", "/internal/logs/raw", [this](http::Request&) {
    json entries = json::array();
    for (const telemetry::LogEntry& entry : log_.entries()) entries.push_back(entry_json(entry));
    std::lock_guard lock(mutex_);
    return http::Response::json(200,
                                {{"entries", entries}, {"size", size_json(update_size().first)}});
  });
  router.add("PATCH", "/internal/logs/subscribe",
             with_plain_errors([this](http::Request& request) {
               const Subscription subscription = parse_subscription(request);
               std::lock_guard lock(mutex_);
               if (subscription.enabled) {
                 subscribers_.insert(subscription.client_id);
               } else {
                 subscribers_.erase(subscription.client_id);
               }
               return http::Response::text(200, "");
             }));
}

std::pair<TerminalSize, bool> ComfyLogs::update_size() {
  const TerminalSize size = terminal_size_();
  const bool changed = reported_size_ != size;
  reported_size_ = size;
  return {size, changed};
}

void ComfyLogs::forward(const telemetry::LogEntry& entry) {
  std::lock_guard lock(mutex_);
  if (subscribers_.empty()) return;
  const auto [size, changed] = update_size();
  const json message = {
      {"type", "logs"},
      {"data", {{"entries", json::array({entry_json(entry)})},
                {"size", changed ? size_json(size) : json(nullptr)}}}};
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    it = send_(*it, message) ? std::next(it) : subscribers_.erase(it);
  }
}

}  // namespace df::api
