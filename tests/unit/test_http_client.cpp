// Unit tests for the HTTP client's URL handling and its errors when no server answers.
#include <gtest/gtest.h>

#include "http/client.h"
#include "http/server.h"

namespace df::http {
namespace {

ErrorCode code_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.code();
  }
  return ErrorCode::kInternal;
}

TEST(HttpClient, AcceptsOnlyPlainHttpBaseUrls) {
  EXPECT_NO_THROW(Client("http://127.0.0.1:8188"));
  EXPECT_NO_THROW(Client("http://localhost:8188/"));
  EXPECT_NO_THROW(Client("http://example.com"));
  for (std::string bad : {"https://127.0.0.1:8188", "127.0.0.1:8188", "http://127.0.0.1:8188/v1",
                          "http://user@host:1", "http://host:1?x=1", "", "http://"}) {
    EXPECT_EQ(code_of([&] { Client client(bad); }), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(HttpClient, UnreachableServerIsUnavailableNamingIt) {
  uint16_t free_port;
  {
    Router router;
    Server server(router, ServerLimits{});
    server.start("127.0.0.1", 0);
    free_port = server.port();
  }  // nothing listens there any more
  std::string url = "http://127.0.0.1:" + std::to_string(free_port);
  try {
    Client(url, 2000).get("/");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
    EXPECT_TRUE(std::string(error.what()).starts_with("cannot reach " + url + ": "))
        << error.what();
  }
}

TEST(HttpClient, TargetMustBeAPath) {
  Client client("http://127.0.0.1:1");
  EXPECT_EQ(code_of([&] { client.get("v1/jobs"); }), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace df::http
