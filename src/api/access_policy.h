// Who may reach which route: API keys on /v1 (Authorization: Bearer), on the ComfyUI routes and
// /ws also as ?token=, admin-only routes, and the caller every handler sees.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "blob/url_signer.h"
#include "http/router.h"
#include "store/store.h"

namespace df::api {

enum class RouteAccess {
  kPublic,         // health, readiness, OpenAPI, signed files, the web frontend's static files
  kBearer,         // /v1: the Authorization header only
  kBearerOrToken,  // ComfyUI routes and /ws: the header, ?token= as ComfyUI client apps send it,
                   // or the web frontend's session cookie
};

// The cookie the login page sets: "<key hash>.<expiry, epoch s>.<HMAC>", HttpOnly, SameSite=Strict.
inline constexpr std::string_view kSessionCookie = "dreamforge_session";

// The access a route needs, by its method and pattern.
RouteAccess route_access(const std::string& pattern);
// Whether only admin keys may call the route (metrics, server logs, unloading models, users).
bool admin_only(const std::string& method, const std::string& pattern);

// The owner whose jobs the caller may list: nullopt (everyone's) for admins.
std::optional<std::string> owner_filter(const http::Caller& caller);

// The id a ComfyUI client's socket and prompts meet under: a user's ids are scoped to the user,
// so nobody receives another user's execution messages by naming their client id.
std::string scoped_client_id(const http::Caller& caller, const std::string& client_id);

// The value of cookie `name` in a Cookie header ("" when absent).
std::string cookie_value(std::string_view header, std::string_view name);

// The Idempotency-Key as stored: scoped to its user, so two users' keys never meet.
std::string owned_idempotency_key(const http::Caller& caller, const std::string& key);

// The router's access check. Without any API key ever created everyone is the "default" admin;
// once one exists (revoked or not) every non-public route needs a valid key.
class AccessPolicy {
 public:
  // `signing_secret` signs session cookies (the service's secret, as for file URLs).
  AccessPolicy(store::Store& store, const std::string& signing_secret)
      : store_(store), signer_(signing_secret) {}

  // Fills request.caller; throws Error(kUnauthorized) for a missing, unknown or revoked key and
  // Error(kForbidden) for a user key on an admin-only route. Never echoes the key.
  void check(http::Request& request, const http::Route& route);
  // Whether keys are required now (cached once true: keys are never un-created).
  bool keys_required();

  // A session cookie value for `key`, valid `lifetime_s`; throws Error(kUnauthorized) for a key
  // that is unknown or revoked.
  std::string start_session(const std::string& key, int64_t lifetime_s);
  // Whether the request carries a valid session cookie (of a key not revoked since).
  bool signed_in(const http::Request& request);

 private:
  // The caller the request's credentials name, by what `access` accepts; throws
  // Error(kUnauthorized) when there are none or they are not valid.
  http::Caller authenticated_caller(const http::Request& request, RouteAccess access);
  http::Caller caller_for(const std::string& key);
  // The caller of a valid session cookie in the request; nullopt when there is none.
  std::optional<http::Caller> session_caller(const http::Request& request);
  static http::Caller caller_of(const store::ApiKeyRecord& record);

  store::Store& store_;
  blob::UrlSigner signer_;
  std::atomic<bool> keys_seen_{false};
};

}  // namespace df::api
