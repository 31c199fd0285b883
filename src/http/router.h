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

class Router {
 public:
  void add(std::string method, std::string pattern, Handler handler);
  // Routes in the order they were added.
  const std::vector<Route>& routes() const { return routes_; }
  // Finds the route for the request (by its decoded `path`) and fills request.path_params. When
  // several patterns match, the most specific wins: at the first segment where they differ, a
  // literal beats "{name}", which beats "{name...}". GET routes also serve HEAD unless a HEAD
  // route matches. Throws Error(kNotFound) when no pattern matches the path, and
  // Error(kMethodNotAllowed) with details {"allow": [methods]} when some match only with another
  // method. Throws Error(kInvalidArgument) from add() for a malformed pattern.
  const Route& match(Request& request) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace df::http
