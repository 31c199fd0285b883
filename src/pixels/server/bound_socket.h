// A ZeroMQ socket bound to the address a service option names, failing loudly when it cannot be.
#pragma once

#include <string>

#include <zmq.hpp>

namespace df::pixels {

// A socket of `type` bound to `address`, closed with linger 0 (no unsent message holds up a stop).
// Throws Error(kUnavailable) naming `option` (e.g. "--zmq-req-addr") and the address when the
// bind fails (a port taken, a malformed address).
zmq::socket_t bound_socket(zmq::context_t& context, zmq::socket_type type,
                           const std::string& address, const std::string& option);

}  // namespace df::pixels
