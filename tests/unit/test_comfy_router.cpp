// Tests of add_comfy_route: every ComfyUI route answers with and without the "/api" prefix.
#include <gtest/gtest.h>

#include "api/comfy_router.h"
#include "core/error.h"

namespace df::api {
namespace {

http::Request request_for(std::string method, std::string path) {
  http::Request request;
  request.method = std::move(method);
  request.path = std::move(path);
  return request;
}

TEST(ComfyRouter, RegistersPlainAndPrefixedPaths) {
  http::Router router;
  add_comfy_route(router, "GET", "/object_info/{class}", [](http::Request& request) {
    return http::Response::text(200, request.path_params.at("class"));
  });
  for (const char* path : {"/object_info/KSampler", "/api/object_info/KSampler"}) {
    http::Request request = request_for("GET", path);
    const http::Route& route = router.match(request);
    EXPECT_EQ(route.handler(request).body, "KSampler") << path;
  }
}

TEST(ComfyRouter, OtherPrefixesAndMethodsDoNotMatch) {
  http::Router router;
  add_comfy_route(router, "POST", "/prompt", [](http::Request&) { return http::Response(); });
  http::Request nested = request_for("POST", "/api/api/prompt");
  EXPECT_THROW(router.match(nested), Error);
  http::Request get = request_for("GET", "/api/prompt");
  try {
    router.match(get);
    FAIL() << "GET matched a POST route";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kMethodNotAllowed);
  }
}

}  // namespace
}  // namespace df::api
