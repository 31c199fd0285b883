// The peer of the dispatch benchmark: the simplest Redis dispatch, one list (LPUSH / BRPOP).
#pragma once

#include <string>

#include "queue/queue.h"
#include "queue/redis_connection.h"
#include "store/store.h"

namespace df::bench {

// Where the list lives: "redis-list://host:port[/db][?prefix=...]" names the list
// "<prefix>:jobs" on that server.
struct RedisListLocation {
  queue::RedisEndpoint endpoint;
  std::string list_key;
};

// True for a URL of the redis-list:// scheme.
bool is_redis_list_url(const std::string& url);
// Throws Error(kInvalidArgument) for a malformed URL.
RedisListLocation parse_redis_list_url(const std::string& url);

// LPUSH the job id on enqueue, BRPOP it on claim, then the same store claim as the other queues
// (claim_job_by_id). Nothing more: a popped id is gone from Redis, so there are no acks, no
// take-over of a stopped worker's jobs and no reconciliation with the store. This is the baseline
// the real queues are measured against, not a queue to run the service on.
class RedisListQueue final : public queue::Queue {
 public:
  RedisListQueue(RedisListLocation location, store::Store& store);

  void enqueue(const Job& job) override;
  // BRPOP waits whole milliseconds (at least 1) and cannot be woken early.
  std::optional<queue::Delivery> claim(const std::string& worker_id, int64_t lease_ms,
                                       int64_t wait_ms) override;
  void wake() override {}
  void touch(const queue::Delivery&) override {}
  void settle(const queue::Delivery&, const queue::SettleInfo&) override {}
  // A list keeps no record of its deliveries, so it finds nothing to dispatch again.
  int reconcile() override { return 0; }
  void ping() override;
  std::string kind() const override { return "redis-list"; }

 private:
  std::string list_key_;
  store::Store& store_;
  queue::RedisPool pool_;
};

}  // namespace df::bench
