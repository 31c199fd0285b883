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

LinkEvent LinkEvent::update(nlohmann::json message) {
  LinkEvent event;
  event.message = std::move(message);
  return event;
}

LinkEvent LinkEvent::reply(pixels::Request request, nlohmann::json message) {
  LinkEvent event;
  event.kind = Kind::kReply;
  event.request = std::move(request);
  event.message = std::move(message);
  return event;
}

LinkEvent LinkEvent::failure(pixels::Request request, bool unavailable, std::string error) {
  LinkEvent event;
  event.kind = Kind::kFailure;
  event.request = std::move(request);
  event.unavailable = unavailable;
  event.error = std::move(error);
  return event;
}

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
        push(LinkEvent::update(std::move(update)));
      }
    } catch (const std::exception& e) {
      push(LinkEvent::failure(pixels::PingRequest{}, false, e.what()));
    }
  }
}

void LinkWorker::send_now(const pixels::Request& request) {
  try {
    nlohmann::json reply = link_->request(request);
    push(LinkEvent::reply(request, std::move(reply)));
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
    push(LinkEvent::failure(request, unavailable, e.what()));
  } catch (const std::exception& e) {
    push(LinkEvent::failure(request, false, e.what()));
  }
}

}  // namespace df::tui
