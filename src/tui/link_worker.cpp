// The terminal client's link thread: requests out, replies and updates in.
#include "tui/link_worker.h"

#include <optional>
#include <utility>

#include "core/error.h"

namespace df::tui {

namespace {

constexpr int kUpdateWaitMs = 50;

bool resend_when_back(const pixels::Request& request) {
  return std::holds_alternative<pixels::GenerateRequest>(request) ||
         std::holds_alternative<pixels::CancelRequest>(request);
}

}  // namespace

LinkWorker::LinkWorker(std::unique_ptr<ServerLink> link, std::chrono::milliseconds status_interval)
    : link_(std::move(link)), status_interval_(status_interval), description_(link_->describe()) {
  outbox_.push_back(pixels::ListModelsRequest{});
  thread_ = std::thread([this] { run(); });
}

LinkWorker::~LinkWorker() {
  stop_ = true;
  thread_.join();
}

void LinkWorker::send(pixels::Request request) {
  std::lock_guard lock(mutex_);
  outbox_.push_back(std::move(request));
}

std::vector<LinkEvent> LinkWorker::take_events() {
  std::lock_guard lock(mutex_);
  return std::exchange(inbox_, {});
}

void LinkWorker::push(LinkEvent event) {
  std::lock_guard lock(mutex_);
  inbox_.push_back(std::move(event));
}

void LinkWorker::run() {
  auto next_status = std::chrono::steady_clock::now();
  while (!stop_) {
    if (std::chrono::steady_clock::now() >= next_status) {
      next_status = std::chrono::steady_clock::now() + status_interval_;
      send_now(pixels::StatusRequest{});
      continue;
    }
    std::optional<pixels::Request> request;
    {
      std::lock_guard lock(mutex_);
      if (!outbox_.empty()) {
        request = std::move(outbox_.front());
        outbox_.pop_front();
      }
    }
    if (request) {
      send_now(*request);
      continue;
    }
    try {
      for (auto& update : link_->poll_updates(kUpdateWaitMs)) {
        push({.kind = LinkEvent::Kind::kUpdate, .message = std::move(update)});
      }
    } catch (const std::exception& e) {
      push({.kind = LinkEvent::Kind::kFailure, .request = pixels::PingRequest{},
            .error = e.what()});
    }
  }
}

void LinkWorker::send_now(const pixels::Request& request) {
  try {
    nlohmann::json reply = link_->request(request);
    push({.kind = LinkEvent::Kind::kReply, .request = request, .message = std::move(reply)});
    if (server_away_) {
      server_away_ = false;
      std::lock_guard lock(mutex_);
      outbox_.push_front(pixels::ListModelsRequest{});
      outbox_.insert(outbox_.begin() + 1, held_.begin(), held_.end());
      held_.clear();
    }
  } catch (const Error& e) {
    const bool unavailable = e.code() == ErrorCode::kUnavailable;
    if (unavailable) {
      server_away_ = true;
      if (resend_when_back(request)) held_.push_back(request);
    }
    push({.kind = LinkEvent::Kind::kFailure, .request = request, .unavailable = unavailable,
          .error = e.what()});
  } catch (const std::exception& e) {
    push({.kind = LinkEvent::Kind::kFailure, .request = request, .error = e.what()});
  }
}

}  // namespace df::tui
