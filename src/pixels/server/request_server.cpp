// The REP thread: framing checks, MessagePack decoding, a bounded wait for the handler, one reply.
#include "pixels/server/request_server.h"

#include <iterator>

#include <zmq_addon.hpp>

#include "core/error.h"
#include "pixels/msgpack_codec.h"
#include "pixels/pixels_messages.h"
#include "pixels/server/bound_socket.h"

namespace df::pixels {
namespace {

// How often the thread looks whether it should stop.
constexpr std::chrono::milliseconds kPollInterval{100};
// The largest frame received at all: libzmq drops the connection of a peer sending a larger one.
// Frames between kMaxMessageBytes and this are received to be answered with an error reply.
constexpr std::size_t kLargestFrameReceived = 16 * kMaxMessageBytes;

}  // namespace

RequestServer::RequestServer(RequestServerSettings settings, RequestHandler handler)
    : settings_(std::move(settings)),
      handler_(std::move(handler)),
      socket_(bound_socket(context_, zmq::socket_type::rep, settings_.address, settings_.option,
                           static_cast<int64_t>(kLargestFrameReceived))) {
  thread_ = std::jthread([this](std::stop_token stop) { serve(stop); });
}

RequestServer::~RequestServer() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
  late_.clear();  // each future's end waits for its handler
}

void RequestServer::serve(std::stop_token stop) {
  while (!stop.stop_requested()) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, kPollInterval);
    std::erase_if(late_, [](const auto& late) {
      return late.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    });
    if ((item.revents & ZMQ_POLLIN) == 0) continue;
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      continue;
    }
    const std::string reply = answer(frames);
    socket_.send(zmq::buffer(reply), zmq::send_flags::dontwait);
  }
}

std::string RequestServer::answer(const std::vector<zmq::message_t>& frames) {
  if (frames.size() != 1) {
    return encode_msgpack(error_reply("a request is one frame holding one MessagePack map; this "
                                      "one had " + std::to_string(frames.size()) + " frames"));
  }
  const zmq::message_t& frame = frames.front();
  if (frame.size() > kMaxMessageBytes) {
    return encode_msgpack(error_reply("a request is at most " + std::to_string(kMaxMessageBytes) +
                                      " bytes; this one had " + std::to_string(frame.size()) +
                                      " (it was not read)"));
  }
  try {
    return encode_msgpack(handle_within_deadline(decode_msgpack(frame.to_string_view())));
  } catch (const std::exception& e) {
    return encode_msgpack(error_reply(e.what()));
  }
}

nlohmann::ordered_json RequestServer::handle_within_deadline(const nlohmann::json& message) {
  auto handling = std::async(std::launch::async, handler_, message);
  if (handling.wait_for(settings_.reply_deadline) == std::future_status::ready) {
    return handling.get();
  }
  late_.push_back(std::move(handling));
  throw Error(ErrorCode::kTimeout,
              "the request was not handled within " +
                  std::to_string(settings_.reply_deadline.count()) +
                  " ms (is the database busy?); it may still take effect");
}

}  // namespace df::pixels
