// ComfyUI-compatible routes: registered under their plain path and "/api", errors as bare statuses.
#pragma once

#include <string>

#include "http/router.h"

namespace df::api {

// Adds `handler` for `method` at `path` ("/prompt") and at "/api" + `path` ("/api/prompt"), as
// ComfyUI does for every dynamic route: the web frontend calls only the prefixed form, scripts
// only the plain one.
void add_comfy_route(http::Router& router, const std::string& method, const std::string& path,
                     http::Handler handler);

// `handler` with its df::Error answered the way ComfyUI answers errors on its file routes: a bare
// status (http_status_for the code) with the message as plain text, not the /v1 envelope.
http::Handler with_plain_errors(http::Handler handler);

}  // namespace df::api
