// Refuses requests a web page could make a browser send: a foreign Origin (cross-site requests)
// and a Host name the server was not told to answer to (DNS rebinding).
#include "http/request_guard.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/ip/address.hpp>

#include "core/error.h"

namespace df::http {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// "Example.com:8188" -> name "example.com", port "8188"; "[::1]:80" -> "::1", "80".
struct Authority {
  std::string name;
  std::string port;
};

Authority split_authority(const std::string& authority) {
  Authority out;
  const std::string text = lower(authority);
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    out.name = text.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    if (close != std::string::npos && close + 1 < text.size() && text[close + 1] == ':') {
      out.port = text.substr(close + 2);
    }
    return out;
  }
  const auto colon = text.rfind(':');
  if (colon != std::string::npos && text.find(':') == colon) {
    out.name = text.substr(0, colon);
    out.port = text.substr(colon + 1);
  } else {
    out.name = text;
  }
  return out;
}

bool is_ip_address(const std::string& name) {
  boost::system::error_code error;
  boost::asio::ip::make_address(name, error);
  return !error;
}

// "http://host:port" -> its authority, the port filled in from the scheme when absent; nullopt
// for "null" and anything else without a scheme.
struct Origin {
  Authority authority;
  std::string default_port;  // of its scheme: "443" for https, else "80"
};

std::optional<Origin> parse_origin(const std::string& origin) {
  const auto scheme_end = origin.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;
  Origin out{split_authority(origin.substr(scheme_end + 3)),
             lower(origin.substr(0, scheme_end)) == "https" ? "443" : "80"};
  if (out.authority.port.empty()) out.authority.port = out.default_port;
  return out;
}

Error refused(const std::string& message, const std::string& header, const std::string& value) {
  return Error(ErrorCode::kForbidden,
               message + "; if a proxy or another name of this server sends it, allow the name "
                         "with --allowed-hosts (DREAMFORGE_ALLOWED_HOSTS)",
               {{"header", header}, {"value", value}});
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  if (lower(host) == "localhost") return true;
  boost::system::error_code error;
  const auto address = boost::asio::ip::make_address(host, error);
  return !error && address.is_loopback();
}

RequestGuard::RequestGuard(std::vector<std::string> allowed_hosts, bool bound_to_loopback)
    : bound_to_loopback_(bound_to_loopback) {
  for (auto& name : allowed_hosts) {
    if (name == "*") any_host_ = true;
    if (!name.empty()) allowed_hosts_.push_back(lower(std::move(name)));
  }
}

bool RequestGuard::allowed(const std::string& host_name) const {
  return any_host_ ||
         std::find(allowed_hosts_.begin(), allowed_hosts_.end(), host_name) != allowed_hosts_.end();
}

void RequestGuard::check(const Request& request) const {
  // With two of either header, parts of a stack may judge by different ones.
  for (const char* name : {"Host", "Origin"}) {
    const auto count = std::count_if(
        request.headers.begin(), request.headers.end(),
        [name](const auto& header) { return boost::algorithm::iequals(header.first, name); });
    if (count > 1) {
      throw Error(ErrorCode::kBadRequest, std::string("the request has more than one ") + name +
                                              " header");
    }
  }
  const std::string host = request.header("Host");
  const Authority host_authority = split_authority(host);
  // A name can be pointed at this machine by whoever controls its DNS; an address cannot.
  const bool safe_host = host.empty() || host_authority.name == "localhost" ||
                         is_ip_address(host_authority.name) || allowed(host_authority.name) ||
                         (!bound_to_loopback_ && allowed_hosts_.empty());
  if (!safe_host) {
    throw refused("this server does not answer to the host name '" + host_authority.name + "'",
                  "Host", host);
  }
  const std::string origin = request.header("Origin");
  if (origin.empty()) return;
  if (const auto parsed = parse_origin(origin)) {
    const Authority& from = parsed->authority;
    if (allowed(from.name)) return;
    const std::string host_port = host_authority.port.empty() ? parsed->default_port
                                                              : host_authority.port;
    if (from.name == host_authority.name && from.port == host_port) return;
  }
  throw refused("cross-site request refused: the page at '" + origin +
                    "' is not this server's ('" + host + "')",
                "Origin", origin);
}

}  // namespace df::http
