// Opens the queue named by DREAMFORGE_QUEUE_URL.
#include "core/error.h"
#include "queue/db_queue.h"
#include "queue/queue.h"
#include "queue/redis_queue.h"

namespace df::queue {

std::unique_ptr<Queue> open_queue(const std::string& queue_url, store::Store& store) {
  if (queue_url.empty() || queue_url == "db") return std::make_unique<DbQueue>(store);
  if (queue_url.rfind("redis://", 0) == 0) {
    return std::make_unique<RedisQueue>(parse_redis_queue_url(queue_url), store);
  }
  throw Error(ErrorCode::kInvalidArgument,
              "DREAMFORGE_QUEUE_URL must be \"db\" or redis://host:port, not \"" + queue_url + "\"");
}

}  // namespace df::queue
