// Tests of POST /users with the single "default" user: ComfyUI's error shape, never a new user.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/comfy_userdata.h"
#include "test_support.h"

namespace df::api {
namespace {

using nlohmann::json;

http::Response post_users(const std::string& body) {
  test::TestDir dir("df_comfy_users_");
  ComfyUserData users(dir.path() / "user" / "default");
  http::Router router;
  users.register_routes(router);
  http::Request request;
  request.method = "POST";
  request.path = "/api/users";
  request.body = body;
  return router.match(request).handler(request);
}

json error_of_answer(const http::Response& response) {
  EXPECT_EQ(response.status, 400);
  const json body = json::parse(response.body);
  EXPECT_TRUE(body.contains("error") && body["error"].is_string()) << response.body;
  return body["error"];
}

TEST(ComfyUsers, TheDefaultUserIsADuplicate) {
  EXPECT_EQ(error_of_answer(post_users(R"({"username": "default"})")), "Duplicate username.");
}

TEST(ComfyUsers, AnEmptyNameIsNotProvided) {
  EXPECT_EQ(error_of_answer(post_users(R"({"username": "  "})")), "username not provided");
}

TEST(ComfyUsers, OtherUsersAreRefusedInSingleUserMode) {
  const std::string message = error_of_answer(post_users(R"({"username": "alice"})"));
  EXPECT_NE(message.find("single user"), std::string::npos) << message;
}

TEST(ComfyUsers, MalformedBodiesAreRefused) {
  for (const char* body : {"", "{", "[]", "{}", R"({"username": 7})"}) {
    error_of_answer(post_users(body));
  }
}

}  // namespace
}  // namespace df::api
