// Binding the endpoint's sockets.
#include "pixels/server/bound_socket.h"

#include "core/error.h"

namespace df::pixels {

zmq::socket_t bound_socket(zmq::context_t& context, zmq::socket_type type,
                           const std::string& address, const std::string& option,
                           int64_t max_frame_bytes) {
  zmq::socket_t socket(context, type);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::maxmsgsize, max_frame_bytes);
  try {
    socket.bind(address);
  } catch (const zmq::error_t& e) {
    throw Error(ErrorCode::kUnavailable,
                option + ": cannot bind '" + address + "': " + e.what());
  }
  return socket;
}

}  // namespace df::pixels
