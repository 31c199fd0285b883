// Refuses requests a web page could make a browser send: a foreign Origin (cross-site requests)
// and a Host name the server was not told to answer to (DNS rebinding).
#pragma once

#include <string>
#include <vector>

#include "http/message.h"

namespace df::http {

class RequestGuard {
 public:
  // `allowed_hosts`: host names (without port) accepted in Host and Origin besides the server's
  // own address, e.g. a reverse proxy's public name; "*" accepts every name.
  RequestGuard(std::vector<std::string> allowed_hosts, bool bound_to_loopback);

  // Throws Error(kBadRequest) for a request with two Host or two Origin headers, and
  // Error(kForbidden) when the request's Host is a name that is neither allowed nor safe
  // (an IP address or "localhost" always is; any name is while the server is bound to a
  // non-loopback address and no names are configured), or when it names an Origin whose host and
  // port differ from its Host and whose name is not allowed.
  void check(const Request& request) const;

 private:
  bool allowed(const std::string& host_name) const;

  std::vector<std::string> allowed_hosts_;
  bool any_host_ = false;
  bool bound_to_loopback_;
};

// Whether `host` (a bind address: "127.0.0.1", "::1", "localhost") is a loopback address.
bool is_loopback_host(const std::string& host);

}  // namespace df::http
