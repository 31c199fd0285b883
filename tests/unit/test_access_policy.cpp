// API keys and the access check: how keys are made and read, which routes need which key, what
// a user may see, and the check itself against a real SQLite store.
#include <gtest/gtest.h>

#include <string>

#include "api/access_policy.h"
#include "api/api_keys.h"
#include "core/error.h"
#include "store/sqlite_store.h"
#include "test_support.h"

namespace df::api {
namespace {

TEST(ApiKeys, AKeyIsShownOnceAndStoredAsItsHash) {
  const NewApiKey made = make_api_key("ci bot", "ci", "user");
  EXPECT_EQ(made.key.rfind("dfk_" + made.record.id + "_", 0), 0u);
  EXPECT_EQ(made.key.size(), 4 + 16 + 1 + 64);
  EXPECT_EQ(made.record.secret_hash, api_key_hash(made.key));
  EXPECT_EQ(made.record.secret_hash.find(made.key), std::string::npos);
  EXPECT_EQ(made.record.user, "ci");
  EXPECT_EQ(made.record.scope, "user");
  EXPECT_NE(make_api_key("ci bot", "ci", "user").key, made.key);
  EXPECT_EQ(make_api_key("alice", "", "admin").record.user, "alice");  // the name is the user
}

TEST(ApiKeys, BadNamesUsersAndScopesAreRefused) {
  EXPECT_EQ(test::error_code_of([] { make_api_key("", "u", "user"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([] { make_api_key("k", "a/b", "user"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([] { make_api_key("k", "..", "user"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([] { make_api_key("my key", "", "user"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([] { make_api_key("k", "u", "root"); }), ErrorCode::kInvalidArgument);
}

TEST(ApiKeys, BearerTokensAreReadFromTheAuthorizationHeader) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer   abc  "), "abc");
  EXPECT_EQ(bearer_token("Basic abc"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer "), std::nullopt);
  EXPECT_EQ(bearer_token(""), std::nullopt);
}

TEST(RouteAccessRules, V1NeedsTheHeaderComfyRoutesAlsoTakeATokenAndSomeAreOpen) {
  EXPECT_EQ(route_access("/v1/jobs"), RouteAccess::kBearer);
  EXPECT_EQ(route_access("/metrics"), RouteAccess::kBearer);
  EXPECT_EQ(route_access("/prompt"), RouteAccess::kBearerOrToken);
  EXPECT_EQ(route_access("/api/history"), RouteAccess::kBearerOrToken);
  EXPECT_EQ(route_access("/ws"), RouteAccess::kBearerOrToken);
  for (const char* open : {"/healthz", "/readyz", "/v1/openapi.json", "/v1/files/{key...}", "/",
                           "/{path...}"}) {
    EXPECT_EQ(route_access(open), RouteAccess::kPublic) << open;
  }
  EXPECT_TRUE(admin_only("GET", "/metrics"));
  EXPECT_TRUE(admin_only("POST", "/api/free"));
  EXPECT_TRUE(admin_only("GET", "/internal/logs"));
  EXPECT_FALSE(admin_only("GET", "/users"));
  EXPECT_FALSE(admin_only("POST", "/prompt"));
}

TEST(CallerScopes, UsersSeeTheirOwnAndTheirIdsAreScoped) {
  const http::Caller admin;  // the default: no keys
  const http::Caller alice{"alice", false, "k1"};
  EXPECT_TRUE(alice.may_access("alice"));
  EXPECT_FALSE(alice.may_access("bob"));
  EXPECT_TRUE(admin.may_access("bob"));
  EXPECT_EQ(owner_filter(admin), std::nullopt);
  EXPECT_EQ(owner_filter(alice), "alice");
  EXPECT_EQ(scoped_client_id(alice, "c1"), "alice/c1");
  EXPECT_EQ(scoped_client_id(alice, ""), "");
  EXPECT_EQ(scoped_client_id(admin, "c1"), "c1");
  EXPECT_EQ(owned_idempotency_key(alice, "k"), "alice/k");
  EXPECT_EQ(owned_idempotency_key(alice, ""), "");
  EXPECT_EQ(owned_idempotency_key(admin, "k"), "k");
}

class AccessPolicyTest : public ::testing::Test {
 protected:
  http::Request request(const std::string& method, const std::string& authorization = "",
                        const std::string& token = "") {
    http::Request r;
    r.method = method;
    if (!authorization.empty()) r.headers.emplace_back("Authorization", authorization);
    if (!token.empty()) r.query["token"] = token;
    return r;
  }
  http::Route route(const std::string& method, const std::string& pattern) {
    return {method, pattern, {}};
  }

  test::TestDir dir_{"df_access_"};
  store::SqliteStore store_{(dir_.path() / "db.sqlite3").string()};
  AccessPolicy policy_{store_, "a signing secret for the tests"};
};

TEST_F(AccessPolicyTest, WithoutKeysEveryoneIsTheDefaultAdmin) {
  auto r = request("GET");
  policy_.check(r, route("GET", "/v1/jobs"));
  EXPECT_EQ(r.caller.user, "default");
  EXPECT_TRUE(r.caller.admin);
  EXPECT_FALSE(policy_.keys_required());
}

TEST_F(AccessPolicyTest, OnceAKeyExistsRoutesNeedAValidOne) {
  const NewApiKey alice = make_api_key("alice", "", "user");
  const NewApiKey root = make_api_key("root", "", "admin");
  store_.create_api_key(alice.record);
  store_.create_api_key(root.record);

  auto anonymous = request("GET");
  EXPECT_EQ(test::error_code_of([&] { policy_.check(anonymous, route("GET", "/v1/jobs")); }),
            ErrorCode::kUnauthorized);
  auto wrong = request("GET", "Bearer dfk_0000000000000000_nope");
  EXPECT_EQ(test::error_code_of([&] { policy_.check(wrong, route("GET", "/v1/jobs")); }),
            ErrorCode::kUnauthorized);

  auto good = request("GET", "Bearer " + alice.key);
  policy_.check(good, route("GET", "/v1/jobs"));
  EXPECT_EQ(good.caller.user, "alice");
  EXPECT_FALSE(good.caller.admin);
  EXPECT_EQ(good.caller.key_id, alice.record.id);

  // ?token= opens the ComfyUI routes, not /v1.
  auto by_token = request("GET", "", alice.key);
  policy_.check(by_token, route("GET", "/history"));
  EXPECT_EQ(by_token.caller.user, "alice");
  auto v1_token = request("GET", "", alice.key);
  EXPECT_EQ(test::error_code_of([&] { policy_.check(v1_token, route("GET", "/v1/jobs")); }),
            ErrorCode::kUnauthorized);

  auto user_on_admin = request("GET", "Bearer " + alice.key);
  EXPECT_EQ(test::error_code_of([&] { policy_.check(user_on_admin, route("GET", "/metrics")); }),
            ErrorCode::kForbidden);
  auto admin = request("GET", "Bearer " + root.key);
  policy_.check(admin, route("GET", "/metrics"));
  EXPECT_TRUE(admin.caller.admin);

  auto open = request("GET");
  policy_.check(open, route("GET", "/healthz"));
  EXPECT_FALSE(open.caller.admin);  // public routes need nobody and grant nothing

  store_.revoke_api_key(alice.record.id);
  auto revoked = request("GET", "Bearer " + alice.key);
  EXPECT_EQ(test::error_code_of([&] { policy_.check(revoked, route("GET", "/v1/jobs")); }),
            ErrorCode::kUnauthorized);
}

TEST_F(AccessPolicyTest, RefusalsNeverEchoTheKey) {
  store_.create_api_key(make_api_key("alice", "", "user").record);
  const std::string guess = "dfk_1234567890abcdef_secretsecret";
  auto r = request("GET", "Bearer " + guess);
  try {
    policy_.check(r, route("GET", "/v1/jobs"));
    FAIL() << "let in";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("secretsecret"), std::string::npos);
    EXPECT_EQ(e.details().dump().find("secretsecret"), std::string::npos);
  }
}

}  // namespace
}  // namespace df::api
