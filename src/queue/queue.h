// The Queue: dispatches jobs the store holds as queued to workers (the database itself, or Redis Streams).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "store/store.h"

namespace df::queue {

// A job the queue handed to a worker, already claimed in the store under the worker's lease.
struct Delivery {
  Job job;
  std::string receipt;  // the queue's handle on the dispatch ("" for the database queue)
};

// How a delivery ended, written to the store before the queue is told.
enum class Settlement {
  kDone,        // succeeded, failed or canceled: nothing more to dispatch
  kRetry,       // handed back to the store as queued, due at run_after_ms
  kDeadLetter,  // failed after its last attempt: also recorded on the dead-letter stream
};

struct SettleInfo {
  Settlement settlement = Settlement::kDone;
  int64_t run_after_ms = 0;  // kRetry: when the job is due again
  nlohmann::json error;      // kDeadLetter: the final error
};

// The store stays the record: a queue only decides which worker runs which queued job when.
// Every method may throw Error(kUnavailable) when the queue's server cannot be reached; nothing
// is lost then, because reconcile() dispatches again what the store holds as dispatchable.
class Queue {
 public:
  virtual ~Queue() = default;
  // The job was committed to the store as queued: dispatch it once it is due. Idempotent: a job
  // already waiting in the queue is not added twice.
  virtual void enqueue(const Job& job) = 0;
  // Waits up to `wait_ms` for a job and claims it in the store under `worker_id` with a lease of
  // `lease_ms`; nullopt when none came in time.
  virtual std::optional<Delivery> claim(const std::string& worker_id, int64_t lease_ms,
                                        int64_t wait_ms) = 0;
  // Ends the waits of claim() in this process early (a worker is stopping or has other work).
  virtual void wake() = 0;
  // The worker still runs the delivery (called with each lease renewal): other workers must not
  // take it over.
  virtual void touch(const Delivery& delivery) = 0;
  // The delivery's outcome is in the store.
  virtual void settle(const Delivery& delivery, const SettleInfo& info) = 0;
  // Dispatches again every job the store holds as dispatchable (queued, or running with an
  // expired lease) that the queue has lost; returns how many.
  virtual int reconcile() = 0;
  // Throws Error(kUnavailable) when the queue cannot answer.
  virtual void ping() = 0;
  // "db" or "redis": for logs and readiness.
  virtual std::string kind() const = 0;
};

// Opens the queue named by DREAMFORGE_QUEUE_URL: "db" (the store's own table) or
// "redis://host:port[/db][?prefix=…&reconcile_ms=…]"; throws Error(kInvalidArgument) naming the
// variable for anything else.
std::unique_ptr<Queue> open_queue(const std::string& queue_url, store::Store& store);

}  // namespace df::queue
