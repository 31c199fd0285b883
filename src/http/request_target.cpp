// Splits a request target ("/v1/jobs?status=queued") into a percent-decoded path and query.
#include "http/request_target.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "core/error.h"

namespace df::http {

RequestTarget parse_request_target(std::string_view target) {
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) {
    throw Error(ErrorCode::kBadRequest,
                "the request target is not a valid path: " + std::string(target.substr(0, 200)));
  }
  RequestTarget result;
  result.path = parsed->path();
  for (const auto& param : parsed->params()) {
    result.query[param.key] = param.has_value ? param.value : "";
  }
  return result;
}

}  // namespace df::http
