// Where webhooks may go: http(s) URLs whose addresses are public, unless an allowlist admits the
// loopback, private, link-local and other internal addresses that a request forgery would reach.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

namespace df::webhooks {

struct WebhookUrl {
  std::string scheme;  // http | https
  std::string host;    // a name or an address (IPv6 without brackets)
  std::string port;    // "" for the scheme's default
};

// Parses a webhook URL: http or https, a host, no user:password@, at most 2048 characters;
// throws Error(kInvalidArgument) saying what is wrong.
WebhookUrl parse_webhook_url(std::string_view url);

// The address of an IPv4 or IPv6 socket address, nullopt for other families.
std::optional<boost::asio::ip::address> socket_address(const struct sockaddr* address);

// The kind of internal address this is ("loopback", "private", "link-local", ...), "" for a
// public one.
std::string internal_address_kind(const boost::asio::ip::address& address);

class TargetPolicy {
 public:
  // `allowlist` entries: host names (exact, any case), addresses, and networks ("10.0.0.0/8",
  // "fd00::/8"); throws Error(kInvalidArgument) naming `setting` for an entry that is neither.
  explicit TargetPolicy(const std::vector<std::string>& allowlist = {},
                        std::string_view setting = "DREAMFORGE_WEBHOOK_ALLOWED_TARGETS");

  // Whether the host name is allowlisted as a name (then any address it resolves to is).
  bool allows_host(std::string_view host) const;
  // Why a webhook to `address` (for the URL host `host`) is refused; "" when it is allowed.
  std::string refusal(std::string_view host, const boost::asio::ip::address& address) const;
  // Checks a job's webhook URL: parses it and resolves its host; throws Error(kInvalidArgument)
  // when it does not parse, does not resolve, or reaches an address that is refused.
  void check(std::string_view url) const;

 private:
  std::vector<std::string> hosts_;
  std::vector<boost::asio::ip::network_v4> networks_v4_;
  std::vector<boost::asio::ip::network_v6> networks_v6_;
};

}  // namespace df::webhooks
