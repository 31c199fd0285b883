// The lifecycle of what Dream Forge starts: idle stops, backend servers on demand within budget.
#include "worker/runner_lifecycle.h"

#include <chrono>

#include "core/error.h"
#include "telemetry/service_log.h"

namespace df::worker {

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

RunnerIdleStop::RunnerIdleStop(int64_t idle_stop_ms, LifecycleClock clock)
    : idle_stop_ms_(idle_stop_ms), clock_(std::move(clock)), idle_since_ms_(clock_()) {}

bool RunnerIdleStop::stop_due(bool ran_job, bool running) {
  const int64_t now = clock_();
  if (ran_job) {
    idle_since_ms_ = now;
    return false;
  }
  return running && idle_stop_ms_ > 0 && now - idle_since_ms_ >= idle_stop_ms_;
}

StartedBackends::Use::Use(Use&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), name_(std::move(other.name_)) {}

StartedBackends::Use::~Use() {
  if (owner_) owner_->release(name_);
}

StartedBackends::StartedBackends(std::string data_dir, std::shared_ptr<DeviceBudget> budget,
                                 LifecycleClock clock, int kill_grace_ms)
    : data_dir_(std::move(data_dir)),
      budget_(std::move(budget)),
      clock_(std::move(clock)),
      kill_grace_ms_(kill_grace_ms) {}

StartedBackends::~StartedBackends() {
  if (watcher_.joinable()) {
    watcher_.request_stop();
    watcher_.join();
  }
  std::lock_guard lock(mutex_);
  for (const auto& [name, server] : servers_) budget_->leave(server.process->spec().runner_id());
  servers_.clear();  // each BackendProcess stops its server
}

std::function<void()> lease_keeper(store::Store& store, const Job& job, int64_t lease_ms,
                                   int64_t heartbeat_ms, LifecycleClock clock) {
  const Lease lease{job.id, job.worker_id, job.attempts};
  const int64_t started = clock();
  return [&store, lease, lease_ms, heartbeat_ms, clock = std::move(clock),
          renewed = started]() mutable {
    if (clock() - renewed < heartbeat_ms) return;
    renewed = clock();
    store.renew_lease(lease, lease_ms);
  };
}

StartedBackends::Use StartedBackends::ensure_started(const backends::BackendSpec& spec,
                                                     const std::function<void()>& while_waiting) {
  std::lock_guard lock(mutex_);
  Server& server = servers_[spec.name];
  if (!server.process) {
    server.process = std::make_unique<backends::BackendProcess>(spec, data_dir_, kill_grace_ms_);
    budget_->join({spec.runner_id(), spec.device, spec.memory_need_bytes, 0, false, 0,
                   [this, name = spec.name] { return stop_for_room(name); }});
  }
  if (!server.process->running()) {
    const std::string ended = server.process->exit_description();
    budget_->make_room(spec.runner_id(), spec.device, spec.memory_need_bytes);
    server.process->ensure_started(while_waiting);
    server.last_used_ms = clock_();
    telemetry::service_log().info("backend " + spec.name + ": server started (pid " +
                                  std::to_string(server.process->pid()) + ")" +
                                  (ended.empty() ? "" : "; the one before " + ended));
  }
  ++server.busy;
  report(spec, server);
  return Use(this, spec.name);
}

void StartedBackends::report(const backends::BackendSpec& spec, const Server& server) {
  budget_->update(spec.runner_id(), spec.device, server.process->pid(), server.busy > 0,
                  server.last_used_ms);
}

bool StartedBackends::stop_for_room(const std::string& name) {
  std::lock_guard lock(mutex_);
  Server& server = servers_.at(name);
  if (server.busy > 0) return false;
  const std::string ended = server.process->stop();
  telemetry::service_log().info("backend " + name + ": idle server stopped to make room (" +
                                ended + ")");
  report(server.process->spec(), server);
  return true;
}

std::optional<nlohmann::json> StartedBackends::start_for_job(
    const backends::BackendSpec& spec, const std::function<void()>& while_waiting) {
  try {
    ensure_started(spec, while_waiting);
    return std::nullopt;
  } catch (const Error& e) {
    return nlohmann::json{{"code", e.code_name()}, {"message", e.what()}, {"details", e.details()}};
  }
}

std::vector<std::string> StartedBackends::stop_idle(const InUse& in_use) {
  std::lock_guard lock(mutex_);
  const int64_t now = clock_();
  std::vector<std::string> stopped;
  for (auto& [name, server] : servers_) {
    if (!server.process) continue;
    if (in_use && in_use(server.process->spec().runner_id())) server.last_used_ms = now;
    const int64_t idle_timeout_ms = server.process->spec().idle_timeout_ms;
    if (server.busy > 0 || idle_timeout_ms <= 0 || now - server.last_used_ms < idle_timeout_ms) continue;
    if (!server.process->running()) continue;
    const std::string ended = server.process->stop();
    report(server.process->spec(), server);
    telemetry::service_log().info("backend " + name + ": server idle for " +
                                  std::to_string((now - server.last_used_ms) / 1000) +
                                  " s, stopped (" + ended + ")");
    stopped.push_back(name);
  }
  return stopped;
}

void StartedBackends::watch_idle(InUse in_use, int64_t every_ms) {
  watcher_ = std::jthread([this, in_use = std::move(in_use), every_ms](std::stop_token stop) {
    std::mutex wait_mutex;
    std::unique_lock wait_lock(wait_mutex);
    while (true) {
      wake_.wait_for(wait_lock, stop, std::chrono::milliseconds(every_ms), [] { return false; });
      if (stop.stop_requested()) return;
      stop_idle(in_use);
    }
  });
}

pid_t StartedBackends::pid(const std::string& name) {
  std::lock_guard lock(mutex_);
  const auto found = servers_.find(name);
  return found != servers_.end() && found->second.process ? found->second.process->pid() : 0;
}

void StartedBackends::release(const std::string& name) {
  std::lock_guard lock(mutex_);
  Server& server = servers_.at(name);
  --server.busy;
  server.last_used_ms = clock_();
  report(server.process->spec(), server);
}

}  // namespace df::worker
