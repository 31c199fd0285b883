// Splits a request target ("/v1/jobs?status=queued") into a percent-decoded path and query.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace df::http {

struct RequestTarget {
  std::string path;                          // percent-decoded, without the query
  std::map<std::string, std::string> query;  // percent-decoded, '+' as space, last one wins
};

// Throws Error(kBadRequest) for anything but an origin-form target ("/path[?query]").
RequestTarget parse_request_target(std::string_view target);

}  // namespace df::http
