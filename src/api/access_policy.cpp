// The router's access check: API keys, their scopes, and the caller each handler sees.
#include "api/access_policy.h"

#include <array>
#include <string_view>
#include <utility>

#include "api/api_keys.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/numbers.h"

namespace df::api {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// "/api/prompt" and "/prompt" are the same ComfyUI route.
std::string_view without_api_prefix(std::string_view pattern) {
  return starts_with(pattern, "/api/") ? pattern.substr(4) : pattern;
}

constexpr std::array<std::string_view, 11> kPublicPatterns{
    "/healthz", "/readyz", "/v1/openapi.json", "/v1/files/{key...}", "/login", "/logout",
    // The web frontend's own files: they hold no user's data (its API calls need the key).
    "/", "/{path...}", "/templates/{file...}", "/templates/index.json",
    "/templates/index_logo.json"};

constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kAdminRoutes{{
    {"GET", "/metrics"},
    {"POST", "/v1/models:download"},
    {"POST", "/free"},
    {"GET", "/internal/logs"},
    {"GET", "/internal/logs/raw"},
    {"PATCH", "/internal/logs/subscribe"},
    {"POST", "/users"},
}};

}  // namespace

RouteAccess route_access(const std::string& pattern) {
  for (const auto& open : kPublicPatterns) {
    if (pattern == open) return RouteAccess::kPublic;
  }
  return starts_with(pattern, "/v1/") || pattern == "/metrics" ? RouteAccess::kBearer
                                                                : RouteAccess::kBearerOrToken;
}

bool admin_only(const std::string& method, const std::string& pattern) {
  const std::string_view path = without_api_prefix(pattern);
  for (const auto& [admin_method, admin_path] : kAdminRoutes) {
    if (method == admin_method && path == admin_path) return true;
  }
  return false;
}

std::optional<std::string> owner_filter(const http::Caller& caller) {
  if (caller.admin) return std::nullopt;
  return caller.user;
}

std::string scoped_client_id(const http::Caller& caller, const std::string& client_id) {
  if (client_id.empty() || caller.admin) return client_id;
  return caller.user + "/" + client_id;
}

std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto end = header.find(';');
    std::string_view pair = header.substr(0, end);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const auto equals = pair.find('=');
    if (equals != std::string_view::npos && pair.substr(0, equals) == name) {
      return std::string(pair.substr(equals + 1));
    }
    if (end == std::string_view::npos) break;
    header.remove_prefix(end + 1);
  }
  return "";
}

std::string owned_idempotency_key(const http::Caller& caller, const std::string& key) {
  if (key.empty() || caller.user == "default") return key;
  return caller.user + "/" + key;  // user names hold no '/'
}

bool AccessPolicy::keys_required() {
  if (keys_seen_.load()) return true;
  if (!store_.has_api_keys()) return false;
  keys_seen_.store(true);
  return true;
}

void AccessPolicy::check(http::Request& request, const http::Route& route) {
  const RouteAccess access = route_access(route.pattern);
  if (access == RouteAccess::kPublic) {
    // Public routes need nobody and grant nothing; no database read on probes and static files.
    request.caller = {"", false, ""};
    return;
  }
  if (!keys_required()) return;  // the default admin
  request.caller = authenticated_caller(request, access);
  if (!request.caller.admin && admin_only(request.method, route.pattern)) {
    throw Error(ErrorCode::kForbidden, "this route needs an admin key");
  }
}

http::Caller AccessPolicy::authenticated_caller(const http::Request& request, RouteAccess access) {
  if (auto key = bearer_token(request.header("Authorization"))) return caller_for(*key);
  if (access == RouteAccess::kBearer) {
    throw Error(ErrorCode::kUnauthorized,
                "this service needs an API key: send 'Authorization: Bearer KEY'");
  }
  if (auto token = request.query.find("token"); token != request.query.end() && !token->second.empty()) {
    return caller_for(token->second);
  }
  if (auto session = session_caller(request)) return *session;
  throw Error(ErrorCode::kUnauthorized,
              "this service needs an API key: send 'Authorization: Bearer KEY' or ?token=KEY, "
              "or sign in at /login");
}

http::Caller AccessPolicy::caller_of(const store::ApiKeyRecord& record) {
  return {record.user, record.scope == kAdminScope, record.id, record.jobs_per_minute,
          record.max_concurrent_jobs, !record.webhook_secret.empty()};
}

http::Caller AccessPolicy::caller_for(const std::string& key) {
  const auto record = store_.find_api_key(api_key_hash(key));
  if (!record || record->revoked_ms != 0) {
    throw Error(ErrorCode::kUnauthorized, "the API key is not valid (unknown or revoked)");
  }
  return caller_of(*record);
}

std::string AccessPolicy::start_session(const std::string& key, int64_t lifetime_s) {
  caller_for(key);  // throws for a key that is not valid
  const std::string hash = api_key_hash(key);
  const int64_t expires = now_ms() / 1000 + lifetime_s;
  return hash + "." + std::to_string(expires) + "." + signer_.signature("session:" + hash, expires);
}

std::optional<http::Caller> AccessPolicy::session_caller(const http::Request& request) {
  const std::string token = cookie_value(request.header("Cookie"), kSessionCookie);
  const auto first_dot = token.find('.');
  const auto second_dot = token.find('.', first_dot == std::string::npos ? 0 : first_dot + 1);
  if (first_dot == std::string::npos || second_dot == std::string::npos) return std::nullopt;
  const std::string hash = token.substr(0, first_dot);
  const auto expires = parse_integer(token.substr(first_dot + 1, second_dot - first_dot - 1));
  if (!expires) return std::nullopt;
  try {
    signer_.verify("session:" + hash, *expires, token.substr(second_dot + 1), now_ms() / 1000);
  } catch (const Error&) {
    return std::nullopt;  // forged or expired: as if there were no cookie
  }
  const auto record = store_.find_api_key(hash);
  if (!record || record->revoked_ms != 0) return std::nullopt;
  return caller_of(*record);
}

bool AccessPolicy::signed_in(const http::Request& request) {
  return session_caller(request).has_value();
}

}  // namespace df::api
