// RequestGuard: cross-site Origins and rebound Host names are refused, the server's own are not.
#include <gtest/gtest.h>

#include "core/error.h"
#include "http/request_guard.h"

namespace df::http {
namespace {

Request with_headers(std::vector<std::pair<std::string, std::string>> headers) {
  Request request;
  request.headers = std::move(headers);
  return request;
}

bool refused(const RequestGuard& guard, std::vector<std::pair<std::string, std::string>> headers) {
  try {
    guard.check(with_headers(std::move(headers)));
    return false;
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kForbidden);
    return true;
  }
}

TEST(RequestGuard, OnLoopbackOnlyAddressesLocalhostAndAllowedNamesAreServed) {
  const RequestGuard guard({}, /*bound_to_loopback=*/true);
  EXPECT_FALSE(refused(guard, {{"Host", "127.0.0.1:8188"}}));
  EXPECT_FALSE(refused(guard, {{"Host", "localhost:8188"}}));
  EXPECT_FALSE(refused(guard, {{"Host", "[::1]:8188"}}));
  EXPECT_FALSE(refused(guard, {{"Host", "192.168.1.5"}}));
  EXPECT_FALSE(refused(guard, {}));  // HTTP/1.0 without a Host
  EXPECT_TRUE(refused(guard, {{"Host", "evil.example"}}));
  EXPECT_TRUE(refused(guard, {{"Host", "evil.example:8188"}}));
  const RequestGuard proxied({"Images.Example.com"}, true);
  EXPECT_FALSE(refused(proxied, {{"Host", "images.example.com"}}));
  EXPECT_TRUE(refused(proxied, {{"Host", "evil.example"}}));
  EXPECT_FALSE(refused(RequestGuard({"*"}, true), {{"Host", "anything.example"}}));
}

TEST(RequestGuard, OnOtherAddressesAnyNameIsServedUnlessNamesAreConfigured) {
  EXPECT_FALSE(refused(RequestGuard({}, false), {{"Host", "myhost.lan:8188"}}));
  EXPECT_TRUE(refused(RequestGuard({"images.example.com"}, false), {{"Host", "myhost.lan"}}));
  EXPECT_FALSE(refused(RequestGuard({"images.example.com"}, false), {{"Host", "10.0.0.2:8188"}}));
}

TEST(RequestGuard, AnOriginMustBeTheHostItselfOrAllowed) {
  const RequestGuard guard({}, true);
  EXPECT_FALSE(refused(guard, {{"Host", "127.0.0.1:8188"}, {"Origin", "http://127.0.0.1:8188"}}));
  EXPECT_FALSE(refused(guard, {{"Host", "localhost"}, {"Origin", "http://localhost"}}));
  EXPECT_TRUE(refused(guard, {{"Host", "127.0.0.1:8188"}, {"Origin", "http://evil.example"}}));
  EXPECT_TRUE(refused(guard, {{"Host", "127.0.0.1:8188"}, {"Origin", "http://127.0.0.1:9999"}}));
  EXPECT_TRUE(refused(guard, {{"Host", "127.0.0.1:8188"}, {"Origin", "null"}}));
  EXPECT_FALSE(refused(guard, {{"Host", "localhost"}, {"Origin", "https://localhost"}}));
  EXPECT_TRUE(refused(guard, {{"Host", "localhost:8188"}, {"Origin", "https://localhost"}}));
  const RequestGuard proxied({"images.example.com"}, true);
  EXPECT_FALSE(refused(proxied, {{"Host", "127.0.0.1:8188"},
                                 {"Origin", "https://images.example.com"}}));
}

TEST(RequestGuard, LoopbackBindAddresses) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("192.168.1.5"));
}

}  // namespace
}  // namespace df::http
