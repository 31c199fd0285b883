// A ZeroMQ socket bound to the address a service option names, failing loudly when it cannot be.
#pragma once

#include <cstdint>
#include <string>

#include <zmq.hpp>

namespace df::pixels {

// A socket of `type` bound to `address`, closed with linger 0 (no unsent message holds up a stop).
// A peer sending a frame over `max_frame_bytes` (-1: no limit) is disconnected; the limit is set
// before the bind, since a listening socket passes its options on to the connections it accepts.
// Throws Error(kUnavailable) naming `option` (e.g. "--zmq-req-addr") and the address when the
// bind fails (a port taken, a malformed address).
zmq::socket_t bound_socket(zmq::context_t& context, zmq::socket_type type,
                           const std::string& address, const std::string& option,
                           int64_t max_frame_bytes = -1);

}  // namespace df::pixels
