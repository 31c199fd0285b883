// ComfyUI-compatible routes: registered under their plain path and "/api", errors as bare statuses.
#include "api/comfy_router.h"

#include "core/error.h"
#include "core/json_text.h"

namespace df::api {

void add_comfy_route(http::Router& router, const std::string& method, const std::string& path,
                     http::Handler handler) {
  router.add(method, path, handler);
  router.add(method, "/api" + path, std::move(handler));
}

http::Handler with_plain_errors(http::Handler handler) {
  return [handler = std::move(handler)](http::Request& request) {
    try {
      return handler(request);
    } catch (const Error& error) {
      return http::Response::text(http::http_status_for(error.code()), valid_utf8(error.what()));
    }
  };
}

}  // namespace df::api
