// The terminal client's link over the DGX-Pixels wire: a REQ socket for requests, SUB for updates.
#include <cstdio>
#include <optional>

#include <zmq.hpp>

#include "core/error.h"
#include "pixels/msgpack_codec.h"
#include "tui/server_link.h"

namespace df::tui {
namespace {

using nlohmann::json;

// "5 s", "0.3 s": a timeout as the user reads it.
std::string seconds_text(int timeout_ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", timeout_ms / 1000.0);
  return text;
}

class ZmqLink : public ServerLink {
 public:
  ZmqLink(std::string req_address, std::string pub_address, int timeout_ms)
      : req_address_(std::move(req_address)),
        pub_address_(std::move(pub_address)),
        timeout_ms_(timeout_ms),
        sub_(context_, zmq::socket_type::sub) {
    sub_.set(zmq::sockopt::linger, 0);
    sub_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(pixels::kMaxMessageBytes));
    sub_.set(zmq::sockopt::subscribe, "");
    sub_.connect(pub_address_);  // ZeroMQ reconnects by itself after a server restart
  }

  json request(const pixels::Request& request) override {
    if (!req_) req_ = fresh_req_socket();
    const std::string bytes = pixels::encode_msgpack(pixels::request_message(request));
    zmq::message_t reply;
    if (!req_->send(zmq::buffer(bytes), zmq::send_flags::none) ||
        !req_->recv(reply, zmq::recv_flags::none)) {
      req_.reset();  // a REQ socket that missed its reply cannot send again
      throw Error(ErrorCode::kUnavailable,
                  "no answer from " + req_address_ + " within " + seconds_text(timeout_ms_));
    }
    try {
      return pixels::decode_msgpack(reply.to_string_view());
    } catch (const Error& e) {
      throw Error(ErrorCode::kProtocol, req_address_ + " answered with a frame that is not "
                                                       "MessagePack: " + e.what());
    }
  }

  std::vector<json> poll_updates(int wait_ms) override {
    std::vector<json> updates;
    zmq::pollitem_t item{sub_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(wait_ms)) == 0) return updates;
    zmq::message_t frame;
    while (sub_.recv(frame, zmq::recv_flags::dontwait)) {
      if (auto update = decoded_update(frame)) {
        updates.push_back(std::move(*update));
      } else {
        ++undecodable_updates_;
      }
    }
    return updates;
  }

  std::string describe() const override { return "zmq " + req_address_; }

  int64_t undecodable_updates() const override { return undecodable_updates_; }

 private:
  std::optional<zmq::socket_t> fresh_req_socket() {
    zmq::socket_t socket(context_, zmq::socket_type::req);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::rcvtimeo, timeout_ms_);
    socket.set(zmq::sockopt::sndtimeo, timeout_ms_);
    socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(pixels::kMaxMessageBytes));
    socket.connect(req_address_);
    return socket;
  }

  // The update a frame holds: a map with a type; nothing for anything else.
  static std::optional<json> decoded_update(const zmq::message_t& frame) {
    try {
      json update = pixels::decode_msgpack(frame.to_string_view());
      if (!pixels::message_type(update).empty()) return update;
    } catch (const Error&) {
    }
    return std::nullopt;
  }

  std::string req_address_;
  std::string pub_address_;
  int timeout_ms_;
  zmq::context_t context_;
  std::optional<zmq::socket_t> req_;
  zmq::socket_t sub_;
  int64_t undecodable_updates_ = 0;
};

}  // namespace

std::unique_ptr<ServerLink> open_zmq_link(const std::string& req_address,
                                          const std::string& pub_address, int timeout_ms) {
  return std::make_unique<ZmqLink>(req_address, pub_address, timeout_ms);
}

}  // namespace df::tui
