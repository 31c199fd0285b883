// The lifecycle of what Dream Forge starts: idle stops, backend servers on demand within budget.
#include "worker/runner_lifecycle.h"

#include <chrono>

#include "core/error.h"
#include "gpu/nvml.h"
#include "gpu/start_budget.h"
#include "telemetry/service_log.h"
#include "worker/memory_hygiene.h"

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

StartedBackends::StartedBackends(std::string data_dir, FreeBytes free_bytes, HeldBytes held_bytes,
                                 LifecycleClock clock, int kill_grace_ms)
    : data_dir_(std::move(data_dir)),
      free_bytes_(std::move(free_bytes)),
      held_bytes_(std::move(held_bytes)),
      clock_(std::move(clock)),
      kill_grace_ms_(kill_grace_ms) {}

StartedBackends::~StartedBackends() {
  if (watcher_.joinable()) {
    watcher_.request_stop();
    watcher_.join();
  }
  std::lock_guard lock(mutex_);
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
  }
  if (!server.process->running()) {
    const std::string ended = server.process->exit_description();
    apply_budget(spec);
    server.process->ensure_started(while_waiting);
    server.last_used_ms = clock_();
    telemetry::service_log().info("backend " + spec.name + ": server started (pid " +
                                  std::to_string(server.process->pid()) + ")" +
                                  (ended.empty() ? "" : "; the one before " + ended));
  }
  ++server.busy;
  return Use(this, spec.name);
}

void StartedBackends::apply_budget(const backends::BackendSpec& spec) {
  const auto index = cuda_device_index(spec.device);
  if (!index) return;
  const auto free = free_bytes_(*index);
  if (!free) return;
  gpu::StartBudgetInput input;
  input.starting = spec.runner_id();
  input.device = spec.device;
  input.need_bytes = spec.memory_need_bytes;
  input.free_bytes = *free;
  std::map<std::string, Server*> by_id;
  for (auto& [name, other] : servers_) {
    if (name == spec.name || !other.process || other.process->spec().device != spec.device) continue;
    const pid_t pid = other.process->pid();
    if (pid == 0) continue;
    const int64_t held = held_bytes_(*index, pid);
    const auto& other_spec = other.process->spec();
    input.started.push_back({other_spec.runner_id(), held > 0 ? held : other_spec.memory_need_bytes,
                             other.last_used_ms, other.busy > 0});
    by_id[other_spec.runner_id()] = &other;
  }
  const gpu::StartBudgetDecision decision = gpu::decide_start(input);
  if (decision.action == gpu::StartAction::kRefuse) {
    throw Error(ErrorCode::kInsufficientMemory, gpu::start_refused_message(input),
                gpu::start_budget_details(input));
  }
  for (const std::string& id : decision.stop) {
    const std::string ended = by_id.at(id)->process->stop();
    telemetry::service_log().info(id + ": idle server stopped to make room for " + input.starting +
                                  " on " + spec.device + " (" + ended + ")");
  }
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
}

std::optional<int64_t> StartedBackends::nvml_free_bytes(int index) {
  const auto nvml = gpu::system_nvml();
  if (!nvml) return std::nullopt;
  const auto device = nvml->device(index);
  if (!device) return std::nullopt;
  return device->free_bytes;
}

int64_t StartedBackends::nvml_held_bytes(int index, pid_t pid) {
  const auto nvml = gpu::system_nvml();
  return nvml ? nvml->process_memory(index, pid) : 0;
}

}  // namespace df::worker
