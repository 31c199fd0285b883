// The web frontend's sign-in: GET /login (a form), POST /login (a key for a session cookie),
// POST /logout (the cookie cleared).
#pragma once

#include <cstdint>

#include "api/access_policy.h"
#include "http/router.h"

namespace df::api {

class LoginPage {
 public:
  // Sessions last `session_lifetime_s`.
  LoginPage(AccessPolicy& access, int64_t session_lifetime_s)
      : access_(access), session_lifetime_s_(session_lifetime_s) {}

  void register_routes(http::Router& router);

  // What GET / answers before the frontend: a redirect to /login while keys are required and
  // the browser has no valid session; nullopt to serve the frontend.
  std::optional<http::Response> redirect_if_signed_out(const http::Request& request);

 private:
  http::Response sign_in(const http::Request& request);
  http::Response sign_out(const http::Request& request) const;

  AccessPolicy& access_;
  int64_t session_lifetime_s_;
};

// The login form, with `message` (plain text, escaped) above it when not empty.
std::string login_form_html(const std::string& message);

}  // namespace df::api
