// Matches method + path to a handler; "{name}" segments capture one path segment each.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "http/message.h"

namespace df::http {

using Handler = std::function<Response(Request&)>;

struct Route {
  std::string method;   // "GET", "POST", ...
  std::string pattern;  // "/v1/jobs/{id}/events"; a final "{name...}" captures the rest of the path
  Handler handler;
};

// Decides whether a request may reach its route and fills request.caller; throws Error
// (kUnauthorized, kForbidden) to refuse it.
using AccessCheck = std::function<void(Request&, const Route&)>;

class Router {
 public:
  void add(std::string method, std::string pattern, Handler handler);
  // Routes in the order they were added.
  const std::vector<Route>& routes() const { return routes_; }
  // Finds the route for the request (by its decoded `path`) and fills request.path_params. A path
  // belongs to the most specific pattern that matches it (at the first segment where patterns
  // differ, a literal beats "{name}", which beats "{name...}"), and only that pattern's routes
  // answer it: a catch-all never takes a method the more specific pattern lacks. GET routes also
  // serve HEAD unless the pattern has a HEAD route. Throws Error(kNotFound) when no pattern
  // matches the path, and Error(kMethodNotAllowed) with details {"allow": [methods]} (that
  // pattern's methods, HEAD with GET) when its routes have another method (OPTIONS included).
  // Throws Error(kInvalidArgument) from add() for a malformed pattern.
  const Route& match(Request& request) const;

  // The check every matched request passes before its handler runs (none: everyone is let in).
  void set_access_check(AccessCheck check) { access_check_ = std::move(check); }
  void check_access(Request& request, const Route& route) const {
    if (access_check_) access_check_(request, route);
  }

 private:
  std::vector<Route> routes_;
  AccessCheck access_check_;
};

}  // namespace df::http
