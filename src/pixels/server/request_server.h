// The endpoint's REP socket: one thread receives each request and sends exactly one reply.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

namespace df::pixels {

// Turns a decoded request into its reply; may throw (the client then gets an error reply).
using RequestHandler = std::function<nlohmann::ordered_json(const nlohmann::json& message)>;

struct RequestServerSettings {
  std::string address;  // where the REP socket binds
  std::string option;   // the option that set it, named when the bind fails
  // The longest a request is handled before its client gets an error reply instead: the original
  // client gives up after 5 s of silence. A handler still busy then finishes in the background.
  std::chrono::milliseconds reply_deadline{4000};
};

class RequestServer {
 public:
  // Binds (throws Error(kUnavailable) naming the option when it cannot) and starts answering.
  RequestServer(RequestServerSettings settings, RequestHandler handler);
  // Stops answering and closes the socket, after handlers still running have finished.
  ~RequestServer();
  RequestServer(const RequestServer&) = delete;
  RequestServer& operator=(const RequestServer&) = delete;

 private:
  void serve(std::stop_token stop);
  // The reply's bytes for a received message (all its frames): an error reply for a multipart
  // message, a frame over kMaxMessageBytes (not decoded), bytes that are not MessagePack, and a
  // handler that throws or is too slow.
  std::string answer(const std::vector<zmq::message_t>& frames);
  nlohmann::ordered_json handle_within_deadline(const nlohmann::json& message);

  RequestServerSettings settings_;
  RequestHandler handler_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  // Handlers that ran past the deadline: waited for before the server goes.
  std::vector<std::future<nlohmann::ordered_json>> late_;
  std::jthread thread_;  // last: stops and joins before the members it uses go
};

}  // namespace df::pixels
