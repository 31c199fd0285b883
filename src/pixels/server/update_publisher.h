// The endpoint's PUB socket: updates from any thread, sent in order by the one thread that owns it.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

namespace df::pixels {

class UpdatePublisher {
 public:
  // Binds to `address` (throws Error(kUnavailable) naming `option` when it cannot) and starts
  // the sending thread.
  UpdatePublisher(const std::string& address, const std::string& option);
  // Stops the thread and closes the socket (updates not sent yet are dropped).
  ~UpdatePublisher();
  UpdatePublisher(const UpdatePublisher&) = delete;
  UpdatePublisher& operator=(const UpdatePublisher&) = delete;

  // Queues an update as one MessagePack frame; safe from any thread. Updates go out in the order
  // they were queued (to subscribers connected by then, as PUB-SUB does).
  void publish(const nlohmann::ordered_json& update);

 private:
  void send_queued(std::stop_token stop);

  zmq::context_t context_;
  zmq::socket_t socket_;
  std::mutex mutex_;
  std::condition_variable_any queued_;
  std::deque<std::string> pending_;
  std::jthread thread_;  // last: stops and joins before the members it uses go
};

}  // namespace df::pixels
