// Talks to the server on a thread of its own, so the screen stays live while the server is away.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tui/server_link.h"

namespace df::tui {

// What came back from the server: an update, a reply to a request, or a request that failed.
struct LinkEvent {
  enum class Kind { kUpdate, kReply, kFailure };
  Kind kind = Kind::kUpdate;
  pixels::Request request;  // for replies and failures
  nlohmann::json message;   // the update or the reply
  bool unavailable = false;  // a failure because the server did not answer
  std::string error;         // a failure's message

  static LinkEvent update(nlohmann::json message);
  static LinkEvent reply(pixels::Request request, nlohmann::json message);
  static LinkEvent failure(pixels::Request request, bool unavailable, std::string error);
};

// Owns the link (the one thread that uses it): sends the requests handed to it in order, asks for
// the server's status every `status_interval` (and for its models at the start and whenever the
// server answers again after an outage), and collects updates between requests. A generate or
// cancel the server did not answer is sent again, with the same id, once it answers again.
class LinkWorker {
 public:
  LinkWorker(std::unique_ptr<ServerLink> link, std::chrono::milliseconds status_interval);
  ~LinkWorker();
  LinkWorker(const LinkWorker&) = delete;
  LinkWorker& operator=(const LinkWorker&) = delete;

  void send(pixels::Request request);
  // What arrived since the last call, in order.
  std::vector<LinkEvent> take_events();
  const std::string& description() const { return description_; }

 private:
  void run();
  void send_now(const pixels::Request& request);
  void push(LinkEvent event);

  std::unique_ptr<ServerLink> link_;
  const std::chrono::milliseconds status_interval_;
  const std::string description_;
  std::mutex mutex_;
  std::deque<pixels::Request> outbox_;
  std::vector<pixels::Request> held_;  // worker thread only: waiting for the server to come back
  std::vector<LinkEvent> inbox_;
  bool server_away_ = false;  // worker thread only
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace df::tui
