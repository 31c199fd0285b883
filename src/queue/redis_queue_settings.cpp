// Parses the redis:// DREAMFORGE_QUEUE_URL into the Redis queue's settings.
#include "queue/redis_queue_settings.h"

#include <cctype>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "core/numbers.h"

namespace df::queue {
namespace {

constexpr std::string_view kScheme = "redis://";
constexpr std::string_view kShape =
    " (expected redis://[:password@]host[:port][/db][?prefix=...&reconcile_ms=...])";

[[noreturn]] void malformed(const std::string& problem) {
  // The URL itself is not repeated: it may hold a password.
  throw Error(ErrorCode::kInvalidArgument,
              "DREAMFORGE_QUEUE_URL: " + problem + std::string(kShape));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower >= 'a' && lower <= 'f') return lower - 'a' + 10;
  return -1;
}

std::string percent_decoded(std::string_view text, const std::string& what) {
  std::string decoded;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      decoded += text[i];
      continue;
    }
    const int high = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
    if (high < 0 || low < 0) malformed(what + " has a broken %-escape");
    decoded += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return decoded;
}

int64_t integer_in(std::string_view text, int64_t low, int64_t high, const std::string& what) {
  const std::optional<int64_t> value = parse_integer(text);
  if (!value || *value < low || *value > high || text.front() == '+' || text.front() == '-') {
    malformed(what + " must be a whole number from " + std::to_string(low) + " to " +
              std::to_string(high));
  }
  return *value;
}

void parse_user_info(std::string_view user_info, RedisQueueSettings& settings) {
  const size_t colon = user_info.find(':');
  if (colon == std::string_view::npos) {
    settings.password = percent_decoded(user_info, "the password");
  } else {
    settings.username = percent_decoded(user_info.substr(0, colon), "the user name");
    settings.password = percent_decoded(user_info.substr(colon + 1), "the password");
  }
  if (settings.password.empty()) malformed("the login names no password");
}

void parse_host_port(std::string_view host_port, RedisQueueSettings& settings) {
  std::string_view port;
  if (!host_port.empty() && host_port.front() == '[') {
    const size_t close = host_port.find(']');
    if (close == std::string_view::npos) malformed("the IPv6 host lacks its closing ']'");
    settings.host = std::string(host_port.substr(1, close - 1));
    const std::string_view rest = host_port.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') malformed("unexpected text after the IPv6 host");
    if (!rest.empty()) port = rest.substr(1);
    if (rest.size() == 1) malformed("the port is empty");
  } else {
    const size_t colon = host_port.find(':');
    settings.host = std::string(host_port.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = host_port.substr(colon + 1);
      if (port.empty()) malformed("the port is empty");
    }
  }
  if (settings.host.empty()) malformed("the host is missing");
  if (!port.empty()) settings.port = static_cast<int>(integer_in(port, 1, 65535, "the port"));
}

void parse_query(std::string_view query, RedisQueueSettings& settings) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t equals = pair.find('=');
    const std::string name(pair.substr(0, equals));
    const std::string value = percent_decoded(
        equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1), name);
    if (name == "prefix") {
      if (value.empty()) malformed("prefix is empty");
      for (char c : value) {
        if (std::isspace(static_cast<unsigned char>(c)) != 0) malformed("prefix holds a space");
      }
      settings.prefix = value;
    } else if (name == "reconcile_ms") {
      if (value.empty()) malformed("reconcile_ms is empty");
      settings.reconcile_ms = integer_in(value, 1, 86'400'000, "reconcile_ms");
    } else {
      malformed("unknown parameter '" + name + "' (known: prefix, reconcile_ms)");
    }
  }
}

}  // namespace

RedisQueueSettings parse_redis_queue_url(const std::string& url) {
  if (url.rfind(kScheme, 0) != 0) malformed("a Redis queue URL starts with redis://");
  RedisQueueSettings settings;
  std::string_view rest = std::string_view(url).substr(kScheme.size());

  const size_t question = rest.find('?');
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : rest.substr(question + 1);
  rest = rest.substr(0, question);

  const size_t slash = rest.find('/');
  const std::string_view path =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  std::string_view authority = rest.substr(0, slash);

  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    parse_user_info(authority.substr(0, at), settings);
    authority = authority.substr(at + 1);
  }
  parse_host_port(authority, settings);
  if (!path.empty()) settings.db = static_cast<int>(integer_in(path, 0, 1'000'000, "the db"));
  parse_query(query, settings);
  return settings;
}

}  // namespace df::queue
