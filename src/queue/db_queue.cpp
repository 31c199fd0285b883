// The database queue.
#include "queue/db_queue.h"

#include <chrono>

namespace df::queue {

DbQueue::DbQueue(store::Store& store) : store_(store) {}

void DbQueue::enqueue(const Job&) { wake(); }

std::optional<Delivery> DbQueue::claim(const std::string& worker_id, int64_t lease_ms,
                                       int64_t wait_ms) {
  const uint64_t generation = wakeup_generation();
  if (auto job = store_.claim_job(worker_id, lease_ms)) return Delivery{std::move(*job), ""};
  if (wait_ms <= 0) return std::nullopt;
  wait_past(generation, wait_ms);
  if (auto job = store_.claim_job(worker_id, lease_ms)) return Delivery{std::move(*job), ""};
  return std::nullopt;
}

void DbQueue::wake() {
  {
    std::lock_guard lock(mutex_);
    ++wakeups_;
  }
  woken_cv_.notify_all();
}

uint64_t DbQueue::wakeup_generation() {
  std::lock_guard lock(mutex_);
  return wakeups_;
}

void DbQueue::wait_past(uint64_t generation, int64_t wait_ms) {
  std::unique_lock lock(mutex_);
  woken_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                     [&] { return wakeups_ != generation; });
}

// The lease in the store is the whole claim: renewing it (the worker does) is all there is.
void DbQueue::touch(const Delivery&) {}

// The store already holds the outcome, and a retried job is claimable again once it is due.
void DbQueue::settle(const Delivery&, const SettleInfo&) {}

// Nothing can be lost: the table is the queue.
int DbQueue::reconcile() { return 0; }

void DbQueue::ping() { store_.ping(); }

}  // namespace df::queue
