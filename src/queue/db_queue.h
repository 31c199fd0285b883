// The database queue: workers claim straight from the store's jobs table (SKIP LOCKED on PostgreSQL).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "queue/queue.h"

namespace df::queue {

// The store's claim order (priority, then age) is the dispatch order. Workers in other processes
// find new jobs by polling: claim() waits at most wait_ms between two looks at the table, and a
// job enqueued in this process ends the wait at once.
class DbQueue final : public Queue {
 public:
  explicit DbQueue(store::Store& store);
  void enqueue(const Job& job) override;
  std::optional<Delivery> claim(const std::string& worker_id, int64_t lease_ms,
                                int64_t wait_ms) override;
  void wake() override;
  void touch(const Delivery& delivery) override;
  void settle(const Delivery& delivery, const SettleInfo& info) override;
  int reconcile() override;
  void ping() override;
  std::string kind() const override { return "db"; }

 private:
  uint64_t wakeup_generation();
  // Waits until wake() or enqueue() was called after `generation` was read, or wait_ms passed.
  void wait_past(uint64_t generation, int64_t wait_ms);

  store::Store& store_;
  std::mutex mutex_;
  std::condition_variable woken_cv_;
  uint64_t wakeups_ = 0;  // calls of wake() so far
};

}  // namespace df::queue
