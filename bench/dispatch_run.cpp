// The dispatch benchmark's run: producer and worker threads around one store and one queue.
#include "dispatch_run.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "core/ids.h"

namespace df::bench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

Job bench_job(const std::string& id) {
  Job job;
  job.id = id;
  job.type = "generate";
  job.spec = {{"model_id", "dispatch-bench"}, {"prompt", "a job that needs no work"}};
  job.created_ms = now_ms();
  return job;
}

// The event a runner's success ends with, as the worker writes it.
Event succeeded_event(const Job& job) {
  Event finished;
  finished.job_id = job.id;
  finished.type = "job_finished";
  finished.message = "job succeeded";
  finished.plain = "Your images are ready.";
  finished.data = {{"status", "succeeded"}, {"progress", 1.0}};
  finished.created_ms = now_ms();
  return finished;
}

class DispatchRun {
 public:
  DispatchRun(store::Store& store, queue::Queue& queue, const DispatchPlan& plan)
      : store_(store),
        queue_(queue),
        plan_(plan),
        enqueued_ns_(plan.jobs),
        claimed_ns_(plan.jobs),
        deliveries_(plan.jobs) {
    for (int i = 0; i < plan.jobs; ++i) {
      job_ids_.push_back(new_uuid_v7());
      index_of_.emplace(job_ids_.back(), i);
    }
  }

  DispatchTimings run() {
    std::vector<std::thread> threads;
    const auto start_producer = [&] {
      threads.emplace_back([this] { guarded([&] { produce(); }); });
    };
    created_from_ns_ = steady_ns();
    if (!plan_.jobs_per_s) {
      // A backlog: every job waits in the queue before the first worker starts, so the run times
      // the dispatch alone, not one producer's pace of creating jobs.
      start_producer();
      threads.back().join();
      threads.clear();
    }
    dispatch_from_ns_ = steady_ns();
    for (int n = 0; n < plan_.workers; ++n) {
      threads.emplace_back(
          [this, n] { guarded([&] { work("bench-worker-" + std::to_string(n)); }); });
    }
    if (plan_.jobs_per_s) start_producer();
    wait_for_end();
    queue_.wake();
    for (auto& thread : threads) thread.join();
    if (failure_) std::rethrow_exception(failure_);
    return timings();
  }

 private:
  // Runs a thread's body; the first exception of any thread ends the run.
  template <typename Body>
  void guarded(Body body) {
    try {
      body();
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
      stop_ = true;
      changed_.notify_all();
    }
  }

  void produce() {
    for (int i = 0; i < plan_.jobs && !stop_; ++i) {
      if (plan_.jobs_per_s) {
        const auto due =
            std::chrono::nanoseconds(static_cast<int64_t>(i * 1e9 / *plan_.jobs_per_s));
        std::this_thread::sleep_until(
            Clock::time_point(std::chrono::nanoseconds(created_from_ns_)) + due);
      }
      const Job job = store_.create_job(bench_job(job_ids_[i])).job;
      enqueued_ns_[i] = steady_ns();
      queue_.enqueue(job);
    }
    produced_ns_ = steady_ns();
  }

  void work(const std::string& worker_id) {
    while (!stop_) {
      std::optional<queue::Delivery> delivery =
          queue_.claim(worker_id, plan_.lease_ms, plan_.claim_wait_ms);
      if (!delivery) continue;
      const int64_t held_ns = steady_ns();
      const auto found = index_of_.find(delivery->job.id);
      if (found == index_of_.end()) {
        throw Error(ErrorCode::kInternal,
                    "worker " + worker_id + " was handed job " + delivery->job.id +
                        ", which this run did not create (the database or key prefix is not "
                        "fresh)");
      }
      claimed_ns_[found->second] = held_ns;
      ++deliveries_[found->second];
      const Lease lease{delivery->job.id, worker_id, delivery->job.attempts};
      if (!store_.finish_job(lease, JobStatus::kSucceeded, nullptr,
                             succeeded_event(delivery->job))) {
        throw Error(ErrorCode::kInternal, "the store refused the finish of job " +
                                              delivery->job.id + " by " + worker_id +
                                              ": the worker lost its lease");
      }
      queue_.settle(*delivery, {queue::Settlement::kDone, 0, nullptr});
      note_finished();
    }
  }

  void note_finished() {
    const int64_t now = steady_ns();
    std::lock_guard lock(mutex_);
    last_finish_ns_ = std::max(last_finish_ns_, now);
    if (++finished_ == plan_.jobs) stop_ = true;
    changed_.notify_all();
  }

  void wait_for_end() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      const int before = finished_;
      changed_.wait_for(lock, std::chrono::milliseconds(plan_.stall_ms));
      if (!stop_ && finished_ == before) {
        failure_ = std::make_exception_ptr(
            Error(ErrorCode::kTimeout, "no job finished for " + std::to_string(plan_.stall_ms) +
                                           " ms; " + std::to_string(finished_) + " of " +
                                           std::to_string(plan_.jobs) + " jobs had finished"));
        stop_ = true;
      }
    }
  }

  DispatchTimings timings() const {
    DispatchTimings timings;
    timings.job_ids = job_ids_;
    timings.seconds = static_cast<double>(last_finish_ns_ - dispatch_from_ns_) / 1e9;
    timings.producer_seconds = static_cast<double>(produced_ns_ - created_from_ns_) / 1e9;
    for (int i = 0; i < plan_.jobs; ++i) {
      const int64_t delay_ns = claimed_ns_[i] - enqueued_ns_[i];
      if (delay_ns < 0) ++timings.claimed_before_enqueue;
      timings.claim_delay_ms.push_back(static_cast<double>(std::max<int64_t>(delay_ns, 0)) / 1e6);
      timings.deliveries.push_back(deliveries_[i]);
    }
    return timings;
  }

  store::Store& store_;
  queue::Queue& queue_;
  const DispatchPlan plan_;
  std::vector<std::string> job_ids_;
  std::unordered_map<std::string, int> index_of_;  // read-only once the threads run
  // Per job, each written by one thread before the threads are joined.
  std::vector<int64_t> enqueued_ns_;
  std::vector<int64_t> claimed_ns_;
  std::vector<std::atomic<int>> deliveries_;
  int64_t created_from_ns_ = 0;   // the first create
  int64_t dispatch_from_ns_ = 0;  // the first worker starts
  int64_t produced_ns_ = 0;       // the last enqueue returned

  std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<bool> stop_{false};
  int finished_ = 0;
  int64_t last_finish_ns_ = 0;
  std::exception_ptr failure_;
};

// Why a job did not end as it should, or "" when it did.
std::string fault_of(store::Store& store, const std::string& job_id, int deliveries) {
  const std::optional<Job> job = store.get_job(job_id);
  if (!job) return "missing from the store";
  if (job->status != JobStatus::kSucceeded) {
    return "ended " + std::string(job_status_name(job->status));
  }
  if (job->attempts != 1) return "claimed " + std::to_string(job->attempts) + " times";
  if (deliveries != 1) return "handed to workers " + std::to_string(deliveries) + " times";
  const std::vector<Event> events = store.events_after(job_id, 0, 100);
  const auto finishes = std::count_if(events.begin(), events.end(),
                                      [](const Event& e) { return e.type == "job_finished"; });
  if (finishes != 1) return std::to_string(finishes) + " job_finished events";
  return "";
}

}  // namespace

DispatchTimings run_dispatch(store::Store& store, queue::Queue& queue, const DispatchPlan& plan) {
  if (plan.workers < 1 || plan.jobs < 1) {
    throw Error(ErrorCode::kInvalidArgument, "--workers and --jobs must be at least 1");
  }
  if (plan.jobs_per_s && *plan.jobs_per_s <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "--rate must be more than 0 jobs per second");
  }
  return DispatchRun(store, queue, plan).run();
}

void check_each_job_succeeded_once(store::Store& store, const DispatchTimings& timings) {
  int faulty = 0;
  std::string first;
  for (size_t i = 0; i < timings.job_ids.size(); ++i) {
    const std::string fault = fault_of(store, timings.job_ids[i], timings.deliveries[i]);
    if (fault.empty()) continue;
    if (faulty++ == 0) first = "job " + timings.job_ids[i] + " " + fault;
  }
  if (faulty > 0) {
    throw Error(ErrorCode::kInternal,
                std::to_string(faulty) + " of " + std::to_string(timings.job_ids.size()) +
                    " jobs did not end succeeded exactly once (first: " + first + ")");
  }
}

}  // namespace df::bench
