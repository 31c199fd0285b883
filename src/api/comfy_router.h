// Registers a ComfyUI-compatible route under its plain path and under the "/api" prefix.
#pragma once

#include <string>

#include "http/router.h"

namespace df::api {

// Adds `handler` for `method` at `path` ("/prompt") and at "/api" + `path` ("/api/prompt"), as
// ComfyUI does for every dynamic route: the web frontend calls only the prefixed form, scripts
// only the plain one.
void add_comfy_route(http::Router& router, const std::string& method, const std::string& path,
                     http::Handler handler);

}  // namespace df::api
