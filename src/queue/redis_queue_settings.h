// Settings of the Redis Streams queue and the DREAMFORGE_QUEUE_URL (redis://...) they come from.
#pragma once

#include <cstdint>
#include <string>

namespace df::queue {

struct RedisQueueSettings {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string prefix = "dreamforge";  // every key is "<prefix>:..."
  int64_t reconcile_ms = 10000;       // how often claims dispatch again what Redis lost
  // Reconciliation also removes consumers (worker ids; a restarted worker has a new one) that
  // hold no message and have been idle this long.
  int64_t forget_consumers_idle_ms = 60 * 60 * 1000;
  std::string password;
  std::string username;  // "" for Redis's default user
};

// Parses "redis://[[user]:password@]host[:port][/db][?prefix=...&reconcile_ms=...]" (user and
// password percent-encoded, an IPv6 host in brackets); throws Error(kInvalidArgument) naming
// DREAMFORGE_QUEUE_URL on anything malformed.
RedisQueueSettings parse_redis_queue_url(const std::string& url);

}  // namespace df::queue
