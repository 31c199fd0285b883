// The web frontend's sign-in page: a key becomes an HttpOnly, SameSite=Strict session cookie.
// Cross-site form posts never reach it: the request guard refuses foreign Origins (login CSRF).
#include "api/login_page.h"

#include <string>

#include "core/error.h"
#include "http/request_target.h"

namespace df::api {
namespace {

std::string html_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// "Secure" when a TLS-terminating proxy says the browser came over HTTPS.
std::string cookie_attributes(const http::Request& request, int64_t max_age_s) {
  std::string attributes = "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_s);
  if (request.header("X-Forwarded-Proto") == "https") attributes += "; Secure";
  return attributes;
}

http::Response see_other(const std::string& location) {
  http::Response response = http::Response::text(303, "");
  response.headers.emplace_back("Location", location);
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

// The key of a form post (key=...) or a JSON body {"key": "..."}.
std::string posted_key(const http::Request& request) {
  if (request.header("Content-Type").rfind("application/json", 0) == 0) {
    const auto body = request.json_body();
    return body.is_object() && body.contains("key") && body["key"].is_string()
               ? body["key"].get<std::string>()
               : "";
  }
  // A form body is encoded as a query string is.
  const auto form = http::parse_request_target("/?" + request.body).query;
  const auto key = form.find("key");
  return key == form.end() ? "" : key->second;
}

http::Response login_form(int status, const std::string& message) {
  http::Response response =
      http::Response::text(status, login_form_html(message), "text/html; charset=utf-8");
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

}  // namespace

std::string login_form_html(const std::string& message) {
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<title>Dream Forge: sign in</title>"
         "<style>body{font-family:sans-serif;max-width:28rem;margin:10vh auto;padding:0 1rem}"
         "input{width:100%;padding:.5rem;margin:.5rem 0;box-sizing:border-box}"
         "p.error{color:#b00020}</style></head><body>"
         "<h1>Dream Forge</h1>" +
         (message.empty() ? "" : "<p class=\"error\">" + html_escaped(message) + "</p>") +
         "<form method=\"post\" action=\"/login\">"
         "<label for=\"key\">API key</label>"
         "<input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"current-password\" required autofocus>"
         "<input type=\"submit\" value=\"Sign in\"></form>"
         "<form method=\"post\" action=\"/logout\"><input type=\"submit\" value=\"Sign out\"></form>"
         "<p>An administrator makes keys with <code>dreamforge keys create</code>.</p>"
         "</body></html>\n";
}

void LoginPage::register_routes(http::Router& router) {
  router.add("GET", "/login", [](http::Request&) { return login_form(200, ""); });
  router.add("POST", "/login", [this](http::Request& request) { return sign_in(request); });
  router.add("POST", "/logout", [this](http::Request& request) { return sign_out(request); });
}

std::optional<http::Response> LoginPage::redirect_if_signed_out(const http::Request& request) {
  if (!access_.keys_required() || access_.signed_in(request)) return std::nullopt;
  return see_other("/login");
}

http::Response LoginPage::sign_in(const http::Request& request) {
  const std::string key = posted_key(request);
  if (key.empty()) return login_form(401, "Enter an API key.");
  std::string cookie;
  try {
    cookie = access_.start_session(key, session_lifetime_s_);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnauthorized) throw;
    return login_form(401, "That key is not valid (unknown or revoked).");
  }
  http::Response response = see_other("/");
  response.headers.emplace_back(
      "Set-Cookie", std::string(kSessionCookie) + "=" + cookie +
                        cookie_attributes(request, session_lifetime_s_));
  return response;
}

http::Response LoginPage::sign_out(const http::Request& request) const {
  http::Response response = see_other("/login");
  response.headers.emplace_back("Set-Cookie",
                                std::string(kSessionCookie) + "=" + cookie_attributes(request, 0));
  return response;
}

}  // namespace df::api
