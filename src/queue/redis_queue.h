// The Redis Streams queue: three streams by priority band, one consumer group of workers,
// delayed retries in a sorted set; the store stays the record and decides every claim.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "queue/queue.h"
#include "queue/redis_connection.h"
#include "queue/redis_queue_settings.h"
#include "store/store.h"

namespace df::queue {

class RedisQueue final : public Queue {
 public:
  // Connects lazily: Redis may be down now; every operation throws Error(kUnavailable) until it
  // answers again, then works without a new RedisQueue.
  RedisQueue(RedisQueueSettings settings, store::Store& store);

  void enqueue(const Job& job) override;
  std::optional<Delivery> claim(const std::string& worker_id, int64_t lease_ms,
                                int64_t wait_ms) override;
  void wake() override;
  void touch(const Delivery& delivery) override;
  void settle(const Delivery& delivery, const SettleInfo& info) override;
  int reconcile() override;
  void ping() override;
  std::string kind() const override { return "redis"; }

  // The keys this queue uses (for tests and operators): "<prefix>:<name>".
  std::string key(const std::string& name) const { return settings_.prefix + ":" + name; }
  // The stream of a priority band: "<prefix>:jobs:high" (priority > 0), ":normal" (0), ":low".
  std::string stream_for(int priority) const;

 private:
  // A stream message read for this queue's consumer group.
  struct Message {
    std::string stream;
    std::string id;
    std::string job_id;  // "" when the message names no job
  };
  // What one claim attempt needs to know.
  struct Claimant {
    RedisConnection& connection;
    const std::string& worker_id;
    int64_t lease_ms;
  };

  std::vector<std::string> ensure_command(const std::string& job_id, int priority,
                                          int64_t run_after_ms) const;
  bool ensure(RedisConnection& connection, const std::string& job_id, int priority,
              int64_t run_after_ms);
  void release(RedisConnection& connection, const std::string& stream, const std::string& id,
               const std::string& job_id);
  void promote_due(RedisConnection& connection);
  void reconcile_when_due();
  void create_groups(RedisConnection& connection);
  // Removes the group's consumers that hold nothing and were idle for forget_consumers_idle_ms.
  void forget_idle_consumers(RedisConnection& connection);
  // Runs a consumer-group command, creating the groups first when Redis lost them (NOGROUP).
  RedisReply group_command(RedisConnection& connection, const std::vector<std::string>& args,
                           std::string_view what);

  std::vector<Message> read_group(RedisConnection& connection, const std::string& worker_id,
                                  const std::vector<std::string>& streams, const std::string& id,
                                  int count, std::optional<int64_t> block_ms);
  // Takes over at most one message of `band` idle for longer than the lease; `scan_done` tells
  // when the scan of the band's pending entries went round to the start.
  std::vector<Message> autoclaim(const Claimant& claimant, int band, bool& scan_done);
  std::optional<Delivery> take(const Claimant& claimant, const Message& message);
  std::optional<Delivery> take_first(const Claimant& claimant,
                                     const std::vector<Message>& messages);
  std::optional<Delivery> take_own_pending(const Claimant& claimant);
  std::optional<Delivery> take_abandoned(const Claimant& claimant);
  std::optional<Delivery> take_new(const Claimant& claimant);
  std::pair<std::string, std::string> parse_receipt(const std::string& receipt) const;

  RedisQueueSettings settings_;
  store::Store& store_;
  RedisPool pool_;
  std::array<std::string, 3> streams_;  // high, normal, low
  std::atomic<uint64_t> wake_generation_{0};
  std::atomic<int64_t> next_reconcile_try_ms_{0};
  std::mutex autoclaim_mutex_;
  std::array<std::string, 3> autoclaim_cursors_;  // where each band's XAUTOCLAIM scan goes on
};

}  // namespace df::queue
