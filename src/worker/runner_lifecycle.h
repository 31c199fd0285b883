// The lifecycle of what Dream Forge starts: a runner idle for its idle time is stopped (the next job
// starts it again), and a backend server it starts (backends.yaml `command`) is started on demand
// within its device's GPU memory budget, kept while jobs use it and stopped once idle.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <condition_variable>
#include <stop_token>
#include <thread>

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include "backends/backend_config.h"
#include "backends/backend_process.h"
#include "core/job.h"
#include "store/store.h"
#include "worker/device_budget.h"

namespace df::worker {

// Milliseconds of a steady clock (only differences matter).
using LifecycleClock = std::function<int64_t()>;
int64_t steady_now_ms();

// When a worker's runner has been idle long enough to stop. The worker asks after each turn of
// its loop, between jobs, so a stop never cuts a running job short (it drains by construction).
class RunnerIdleStop {
 public:
  // `idle_stop_ms` 0: never. The idle time starts now.
  explicit RunnerIdleStop(int64_t idle_stop_ms, LifecycleClock clock = steady_now_ms);
  // After a turn of the loop: `ran_job` starts the idle time again; true when a runner that still
  // runs (`running`) has been idle for the idle time: the caller stops it.
  bool stop_due(bool ran_job, bool running);

 private:
  int64_t idle_stop_ms_;
  LifecycleClock clock_;
  int64_t idle_since_ms_;
};

// A server's start can outlast a job's lease, and it comes before the job's first heartbeat: the
// returned function, called while it waits, renews the lease `job` holds (its worker_id and
// attempt) at most every `heartbeat_ms`.
std::function<void()> lease_keeper(store::Store& store, const Job& job, int64_t lease_ms,
                                   int64_t heartbeat_ms, LifecycleClock clock = steady_now_ms);

// The backend servers Dream Forge starts, one per backend, shared by that backend's workers; each
// is a member ("backend:<name>") of the process's DeviceBudget while it exists. Thread-safe.
class StartedBackends {
 public:
  // A job running on a backend's server: the server is not stopped (idle or for room) until the
  // Use ends; its end starts the server's idle time.
  class Use {
   public:
    Use(Use&& other) noexcept;
    Use& operator=(Use&&) = delete;
    Use(const Use&) = delete;
    ~Use();

   private:
    friend class StartedBackends;
    Use(StartedBackends* owner, std::string name) : owner_(owner), name_(std::move(name)) {}
    StartedBackends* owner_;
    std::string name_;
  };

  // Servers log under <data_dir>/logs/backends/. `budget`: the one the service's native workers
  // share (by default one of its own, reading NVML).
  explicit StartedBackends(std::string data_dir,
                           std::shared_ptr<DeviceBudget> budget = std::make_shared<DeviceBudget>(),
                           LifecycleClock clock = steady_now_ms, int kill_grace_ms = 5000);
  ~StartedBackends();  // stops every server

  // Before a job runs on `spec`'s backend: its server started when it does not run (never started,
  // stopped idle, or crashed), within the budget of spec.device (cuda:N; none on the CPU): idle
  // servers and native runners of ours on the device are stopped first, least recently used
  // first (DeviceBudget::make_room), when its
  // memory_need does not fit in what is free. Throws Error(kInsufficientMemory) with the numbers
  // when it cannot fit, Error(kUnavailable) when it does not start. A backend without `command`
  // is not ours to start: Error(kInvalidArgument).
  // `while_waiting` is called while a server starts (see BackendProcess::ensure_started).
  Use ensure_started(const backends::BackendSpec& spec,
                     const std::function<void()>& while_waiting = nullptr);
  // A backend worker's check before a job (WorkerContext::before_start): ensure_started, the job's
  // time on the server then counted by `in_use` (see watch_idle); nullopt when the server runs,
  // else the error that fails the job unstarted ({code, message, details}).
  std::optional<nlohmann::json> start_for_job(const backends::BackendSpec& spec,
                                              const std::function<void()>& while_waiting = nullptr);
  // Whether a job runs on the backend with this runner id ("backend:<name>") now, besides Uses.
  using InUse = std::function<bool(const std::string& runner_id)>;
  // Stops the servers no job uses that have been idle for their spec's idle_timeout_ms (0: never);
  // returns their names. A server `in_use` says is used starts its idle time again.
  std::vector<std::string> stop_idle(const InUse& in_use = nullptr);
  // Calls stop_idle(in_use) every `every_ms` on a thread of its own until destroyed.
  void watch_idle(InUse in_use, int64_t every_ms);
  // The process id of `name`'s server; 0 while none runs.
  pid_t pid(const std::string& name);

 private:
  struct Server {
    std::unique_ptr<backends::BackendProcess> process;
    int busy = 0;
    int64_t last_used_ms = 0;
  };
  // Tells the budget what `server` of `spec` is doing now (lock held).
  void report(const backends::BackendSpec& spec, const Server& server);
  // The budget's way to stop `name`'s server to make room: false while a job uses it.
  bool stop_for_room(const std::string& name);
  void release(const std::string& name);

  const std::string data_dir_;
  const std::shared_ptr<DeviceBudget> budget_;
  const LifecycleClock clock_;
  const int kill_grace_ms_;
  // Recursive: a start makes room under it, and the budget may stop another server of ours then.
  std::recursive_mutex mutex_;
  std::map<std::string, Server> servers_;
  std::condition_variable_any wake_;  // the watcher's wait, cut short by destruction
  std::jthread watcher_;
};

}  // namespace df::worker
