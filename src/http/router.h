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
  // Finds the route for the request and fills request.path_params. Throws Error(kNotFound) when no
  // pattern matches the path and Error(kMethodNotAllowed) when one matches only with another method.
  const Route& match(Request& request) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace df::http
