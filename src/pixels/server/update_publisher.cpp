// The PUB thread and its queue.
#include "pixels/server/update_publisher.h"

#include "pixels/msgpack_codec.h"
#include "pixels/server/bound_socket.h"

namespace df::pixels {

UpdatePublisher::UpdatePublisher(const std::string& address, const std::string& option)
    : socket_(bound_socket(context_, zmq::socket_type::pub, address, option)) {
  thread_ = std::jthread([this](std::stop_token stop) { send_queued(stop); });
}

UpdatePublisher::~UpdatePublisher() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void UpdatePublisher::publish(const nlohmann::ordered_json& update) {
  std::string frame = encode_msgpack(update);
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(std::move(frame));
  }
  queued_.notify_one();
}

void UpdatePublisher::send_queued(std::stop_token stop) {
  while (true) {
    std::deque<std::string> batch;
    {
      std::unique_lock lock(mutex_);
      if (!queued_.wait(lock, stop, [this] { return !pending_.empty(); })) return;
      batch.swap(pending_);
    }
    // A PUB socket never blocks: past its high-water mark a slow subscriber misses updates.
    for (const auto& frame : batch) socket_.send(zmq::buffer(frame), zmq::send_flags::dontwait);
  }
}

}  // namespace df::pixels
