// Webhook URL checks: parsing, address classification, the allowlist, and resolution.
#include "webhooks/webhook_target.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

#include <boost/url/parse.hpp>

#include "core/error.h"

namespace df::webhooks {
namespace {

namespace ip = boost::asio::ip;

constexpr size_t kMaxUrlLength = 2048;

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

Error bad_url(const std::string& why) {
  return Error(ErrorCode::kInvalidArgument, "webhook URL " + why);
}

struct Range4 {
  const char* network;
  const char* kind;
};

// The IPv4 ranges a webhook must not reach unless allowlisted.
constexpr std::array<Range4, 12> kInternalV4 = {{{"0.0.0.0/8", "unspecified"},
                                                 {"10.0.0.0/8", "private"},
                                                 {"100.64.0.0/10", "shared (carrier-grade NAT)"},
                                                 {"127.0.0.0/8", "loopback"},
                                                 {"169.254.0.0/16", "link-local"},
                                                 {"172.16.0.0/12", "private"},
                                                 {"192.0.0.0/24", "reserved"},
                                                 {"192.168.0.0/16", "private"},
                                                 {"198.18.0.0/15", "benchmarking"},
                                                 {"224.0.0.0/4", "multicast"},
                                                 {"240.0.0.0/4", "reserved"},
                                                 {"255.255.255.255/32", "broadcast"}}};

bool in_network(const ip::address_v4& address, const ip::network_v4& network) {
  return ip::network_v4(address, network.prefix_length()).canonical() == network.canonical();
}

bool in_network(const ip::address_v6& address, const ip::network_v6& network) {
  return ip::network_v6(address, network.prefix_length()).canonical() == network.canonical();
}

std::string internal_v4_kind(const ip::address_v4& address) {
  for (const auto& range : kInternalV4) {
    if (in_network(address, ip::make_network_v4(range.network))) return range.kind;
  }
  return "";
}

std::string internal_v6_kind(const ip::address_v6& address) {
  if (address.is_v4_mapped()) {
    return internal_v4_kind(ip::make_address_v4(ip::v4_mapped, address));
  }
  if (address.is_unspecified()) return "unspecified";
  if (address.is_loopback()) return "loopback";
  if (address.is_link_local()) return "link-local";
  if (address.is_multicast()) return "multicast";
  if (in_network(address, ip::make_network_v6("fc00::/7"))) return "unique local";
  if (in_network(address, ip::make_network_v6("fec0::/10"))) return "site-local";
  if (in_network(address, ip::make_network_v6("64:ff9b::/96"))) {  // NAT64: the IPv4 inside
    const auto bytes = address.to_bytes();
    return internal_v4_kind(ip::address_v4({bytes[12], bytes[13], bytes[14], bytes[15]}));
  }
  return "";
}

}  // namespace

WebhookUrl parse_webhook_url(std::string_view url) {
  if (url.size() > kMaxUrlLength) {
    throw bad_url("is longer than " + std::to_string(kMaxUrlLength) + " characters");
  }
  const auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) throw bad_url("is not an absolute URL");
  WebhookUrl out;
  out.scheme = lower(parsed->scheme());
  if (out.scheme != "http" && out.scheme != "https") {
    throw bad_url("must start with http:// or https://");
  }
  if (parsed->has_userinfo()) throw bad_url("must not carry a user name or password");
  out.host = parsed->encoded_host_address();
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  if (out.host.empty()) throw bad_url("has no host");
  out.port = parsed->port();
  return out;
}

std::optional<ip::address> socket_address(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    return ip::address_v4(ntohl(v4->sin_addr.s_addr));
  }
  if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), &v6->sin6_addr, bytes.size());
    return ip::address_v6(bytes);
  }
  return std::nullopt;
}

std::string internal_address_kind(const ip::address& address) {
  return address.is_v4() ? internal_v4_kind(address.to_v4()) : internal_v6_kind(address.to_v6());
}

TargetPolicy::TargetPolicy(const std::vector<std::string>& allowlist, std::string_view setting) {
  for (const auto& entry : allowlist) {
    if (entry.empty()) continue;
    boost::system::error_code error;
    if (entry.find('/') != std::string::npos) {
      if (auto v4 = ip::make_network_v4(entry, error); !error) {
        networks_v4_.push_back(v4);
        continue;
      }
      if (auto v6 = ip::make_network_v6(entry, error); !error) {
        networks_v6_.push_back(v6);
        continue;
      }
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(setting) + ": '" + entry + "' is not a network like 10.0.0.0/8");
    }
    if (auto address = ip::make_address(entry, error); !error) {
      if (address.is_v4()) {
        networks_v4_.emplace_back(address.to_v4(), 32);
      } else {
        networks_v6_.emplace_back(address.to_v6(), 128);
      }
      continue;
    }
    hosts_.push_back(lower(entry));
  }
}

bool TargetPolicy::allows_host(std::string_view host) const {
  return std::find(hosts_.begin(), hosts_.end(), lower(host)) != hosts_.end();
}

std::string TargetPolicy::refusal(std::string_view host, const ip::address& address) const {
  if (allows_host(host)) return "";
  const std::string kind = internal_address_kind(address);
  if (kind.empty()) return "";
  if (address.is_v4()) {
    for (const auto& network : networks_v4_) {
      if (in_network(address.to_v4(), network)) return "";
    }
  } else {
    const auto v6 = address.to_v6();
    for (const auto& network : networks_v6_) {
      if (in_network(v6, network)) return "";
    }
    if (v6.is_v4_mapped()) {
      for (const auto& network : networks_v4_) {
        if (in_network(ip::make_address_v4(ip::v4_mapped, v6), network)) return "";
      }
    }
  }
  return "webhook target " + std::string(host) + " reaches " + address.to_string() + ", a " +
         kind + " address; add it to DREAMFORGE_WEBHOOK_ALLOWED_TARGETS to allow it";
}

void TargetPolicy::check(std::string_view url) const {
  const WebhookUrl parsed = parse_webhook_url(url);
  if (allows_host(parsed.host)) return;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int failed = getaddrinfo(parsed.host.c_str(), nullptr, &hints, &found);
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> results(found, &freeaddrinfo);
  if (failed != 0 || found == nullptr) {
    throw bad_url("host '" + parsed.host + "' does not resolve (" + gai_strerror(failed) + ")");
  }
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    const auto address = socket_address(entry->ai_addr);
    if (!address) continue;
    if (const std::string why = refusal(parsed.host, *address); !why.empty()) {
      throw Error(ErrorCode::kInvalidArgument, why);
    }
  }
}

}  // namespace df::webhooks
