// The Redis list dispatch the benchmark compares the real queues with.
#include "dispatch_redis_list_queue.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "queue/redis_queue_settings.h"

namespace df::bench {
namespace {

constexpr std::string_view kListScheme = "redis-list://";

}  // namespace

bool is_redis_list_url(const std::string& url) { return url.rfind(kListScheme, 0) == 0; }

RedisListLocation parse_redis_list_url(const std::string& url) {
  // Same shape as the Redis Streams queue's URL, so one parser reads both.
  queue::RedisQueueSettings settings;
  try {
    settings = queue::parse_redis_queue_url("redis://" + url.substr(kListScheme.size()));
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidArgument,
                "--queue-url: not a redis-list://host:port[/db][?prefix=...] URL: " +
                    std::string(e.what()));
  }
  return {{settings.host, settings.port, settings.db, settings.username, settings.password},
          settings.prefix + ":jobs"};
}

RedisListQueue::RedisListQueue(RedisListLocation location, store::Store& store)
    : list_key_(std::move(location.list_key)), store_(store), pool_(std::move(location.endpoint)) {}

void RedisListQueue::enqueue(const Job& job) {
  auto connection = pool_.borrow();
  connection->call({"LPUSH", list_key_, job.id}, "pushing a job");
}

std::optional<queue::Delivery> RedisListQueue::claim(const std::string& worker_id, int64_t lease_ms,
                                                     int64_t wait_ms) {
  const double wait_s = static_cast<double>(std::max<int64_t>(wait_ms, 1)) / 1000.0;
  queue::RedisReply reply;
  {
    auto connection = pool_.borrow();
    reply = connection->call({"BRPOP", list_key_, std::to_string(wait_s)}, "popping a job");
  }
  // nil: nothing came in time; otherwise [list, job id].
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return std::nullopt;
  const std::string job_id = queue::reply_text(*reply->element[1]);
  if (auto job = store_.claim_job_by_id(job_id, worker_id, lease_ms)) {
    return queue::Delivery{std::move(*job), ""};
  }
  return std::nullopt;
}

void RedisListQueue::ping() {
  auto connection = pool_.borrow();
  connection->call({"PING"}, "a ping");
}

}  // namespace df::bench
