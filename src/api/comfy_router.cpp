// Registers a ComfyUI-compatible route under its plain path and under the "/api" prefix.
#include "api/comfy_router.h"

namespace df::api {

void add_comfy_route(http::Router& router, const std::string& method, const std::string& path,
                     http::Handler handler) {
  router.add(method, path, handler);
  router.add(method, "/api" + path, std::move(handler));
}

}  // namespace df::api
