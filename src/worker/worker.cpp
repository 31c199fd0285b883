// The worker's claim loop.
#include "worker/worker.h"

#include <chrono>
#include <thread>

#include "core/error.h"
#include "gpu/nvml.h"
#include "telemetry/service_log.h"
#include "worker/job_run.h"
#include "worker/memory_hygiene.h"

namespace df::worker {
namespace {

// Why a GPU index cannot be used, when NVML (if there is one) does not have it; "" otherwise.
std::string missing_gpu(const std::string& device) {
  const auto index = cuda_device_index(device);
  const auto nvml = gpu::system_nvml();
  if (!index || !nvml || nvml->device(*index)) return "";
  return "NVML has no GPU " + std::to_string(*index) + " (it has " +
         std::to_string(nvml->devices().size()) + ")";
}

// "cuda" (a runner that sees one GPU, or was not told which) is GPU 0; "cpu" and "cuda:N" as is.
std::string normalized_device(const std::string& device) {
  return device == "cuda" ? "cuda:0" : device.empty() ? "cpu" : device;
}

}  // namespace

Worker::Worker(WorkerContext context) : context_(std::move(context)) {}

Worker::Worker(WorkerContext context, DevicePool& pool, WorkerDevice device,
               std::shared_ptr<DeviceBudget> budget)
    : context_(std::move(context)), pool_(&pool), device_(std::move(device)) {
  if (!is_backend_runner(device_.runner_id)) {
    HeadroomGuardSettings guard;
    guard.worker_id = context_.settings.worker_id;
    // The wait stays well inside the job's lease: the check runs before its first heartbeat.
    guard.wait_ms = context_.settings.lease_ms / 2;
    guard.poll_ms = std::max<int64_t>(50, std::min<int64_t>(250, context_.settings.poll_ms));
    headroom_ = std::make_unique<HeadroomGuard>(pool, guard, [this] { free_now(); },
                                                read_device_memory);
    context_.before_start = [this](const Job& job) {
      if (auto refused = make_room()) return refused;
      if (job.spec.contains("memory_need")) start_runner_for_check();
      return headroom_->check(job);
    };
    if (budget) {
      budget_ = std::move(budget);
      budget_->join({budget_id(), normalized_device(device_.device),
                     context_.settings.runner_memory_need_bytes, 0, false, 0,
                     [this] { return stop_for_room(); }});
    }
  }
  gpu::RunnerState state;
  state.worker_id = context_.settings.worker_id;
  state.runner_id = device_.runner_id;
  state.queue_remaining = pool.backend_queue(device_.runner_id);
  state.device = normalized_device(device_.device);
  state.device_index = cuda_device_index(state.device);
  pool.join(state, [this] { request_free(); });
}

Worker::~Worker() {
  if (budget_) budget_->leave(budget_id());
}

std::string Worker::device_name() const {
  return normalized_device(!device_.device.empty() ? device_.device : context_.runner.device());
}

void Worker::publish(const std::string& state, const RunnerMemoryReport& held) {
  if (budget_) {
    budget_->update(budget_id(), device_name(), context_.runner.memory_pid(), state == "busy",
                    last_used_ms_);
  }
  if (!pool_ || out_of_rotation_) return;
  held_ = held;
  gpu::RunnerState runner;
  runner.worker_id = context_.settings.worker_id;
  runner.runner_id = device_.runner_id;
  runner.queue_remaining = pool_->backend_queue(device_.runner_id);
  runner.device = device_name();
  runner.device_index = cuda_device_index(runner.device);
  runner.pid = context_.runner.pid();
  runner.state = state;
  if (runner.pid != 0) {
    runner.models = held.models;
    runner.models_bytes = held.models_bytes;
    if (held.has_allocator) {
      runner.allocator_reserved_bytes = held.reserved_bytes;
      runner.allocator_allocated_bytes = held.allocated_bytes;
    }
    // A backend's memory is its server's, not its runner's: the runner's hello reports it.
    if (!is_backend_runner(runner.runner_id)) {
      runner.memory_used_bytes =
          RunnerMemoryProbe(runner.device, gpu::system_nvml()).used(context_.runner.memory_pid());
    }
  }
  pool_->update(runner);
}

bool Worker::bring_up() {
  if (!pool_ || !device_.pinned) return true;
  std::string reason = missing_gpu(device_.device);
  if (reason.empty()) {
    try {
      context_.runner.ensure_started();
      reason = hello_mismatch(device_.device, context_.runner.hello_device(),
                              context_.runner.devices());
      if (!reason.empty()) context_.runner.stop();
    } catch (const std::exception& e) {
      reason = std::string("its runner did not start: ") + e.what();
    }
  }
  if (reason.empty()) {
    publish("idle", RunnerMemoryReport{});
    return true;
  }
  pool_->take_out_of_rotation(context_.settings.worker_id, reason);
  out_of_rotation_ = true;
  return false;
}

std::optional<Worker::Placed> Worker::next_delivery(int64_t wait_ms) {
  const std::string& id = context_.settings.worker_id;
  if (!pool_) {
    auto delivery = context_.queue.claim(id, context_.settings.lease_ms, wait_ms);
    if (!delivery) return std::nullopt;
    return Placed{std::move(*delivery), std::nullopt};
  }
  auto turn = pool_->claim_turn();
  if (auto handed = pool_->take_handed(id)) return Placed{std::move(*handed), std::nullopt};
  auto delivery = context_.queue.claim(id, context_.settings.lease_ms, wait_ms);
  if (!delivery) return std::nullopt;
  return place(std::move(*delivery));
}

std::optional<Worker::Placed> Worker::place(queue::Delivery delivery) {
  const Job& job = delivery.job;
  // A job canceled meanwhile or out of attempts ends at once, whoever claimed it.
  if (job.cancel_requested || job.attempts > job.max_attempts) {
    return Placed{std::move(delivery), std::nullopt};
  }
  const std::string& id = context_.settings.worker_id;
  RunnerChoice choice = pool_->choose(job, id);
  switch (choice.action) {
    case RunnerChoice::Action::kRunHere:
      return Placed{std::move(delivery), std::nullopt};
    case RunnerChoice::Action::kFail:
      return Placed{std::move(delivery),
                    nlohmann::json{{"code", "unsupported"}, {"message", choice.reason}}};
    case RunnerChoice::Action::kHandOver:
      if (pool_->hand_over(delivery, id, choice.worker_id, context_.settings.lease_ms)) {
        return std::nullopt;
      }
      choice.reason = "The runner chosen for it was taken meanwhile; it is tried again shortly.";
      break;
    case RunnerChoice::Action::kWait:
      break;
  }
  if (pool_->hold_back(delivery, id, choice.reason, context_.queue) && context_.on_event) {
    context_.on_event(job.id);
  }
  return std::nullopt;
}

bool Worker::run_once(int64_t wait_ms) {
  auto placed = next_delivery(wait_ms);
  if (!placed) return false;
  if (placed->refusal) {  // fails unstarted, with the reason as its error
    WorkerContext refusing = context_;
    refusing.before_start = [refusal = *placed->refusal](const Job&) {
      return std::optional<nlohmann::json>(refusal);
    };
    JobRun(std::move(placed->delivery), refusing).execute();
    return true;
  }
  const std::vector<std::string> checkpoints = job_checkpoints(placed->delivery.job);
  const std::string job_id = placed->delivery.job.id;
  answer_room_request(true);
  publish("busy", held_);
  JobRun run(std::move(placed->delivery), context_);
  run.execute();
  last_used_ms_ = steady_now_ms();
  const bool runner_gone = context_.runner.pid() == 0;
  // A runner that lives on keeps its models warm: as its own report says, or (a runner that does
  // not report its memory) what it held before and the job's checkpoints.
  RunnerMemoryReport held = run.runner_memory_at_end();
  if (!held.reported) {
    held = held_;
    held.models.insert(held.models.end(), checkpoints.begin(), checkpoints.end());
  }
  publish("idle", runner_gone ? RunnerMemoryReport{} : held);
  if (pool_ && device_.pinned && crashes_.record(runner_gone && runner_crashed(job_id))) {
    pool_->take_out_of_rotation(context_.settings.worker_id,
                                "its runner was lost in " + std::to_string(kCrashesBeforeRotation) +
                                    " jobs in a row");
    out_of_rotation_ = true;
  }
  if (run.ended_by_backend_outage()) {
    report_backend_failure(job_id);
    wait_for_backends();
  }
  return true;
}

bool Worker::backend_answers() {
  if (!pool_ || pool_->backend_up(device_.runner_id)) return true;
  report_pause("its backend " + device_.runner_id + " does not answer");
  return false;
}

void Worker::report_backend_failure(const std::string& job_id) {
  if (!pool_ || !is_backend_runner(device_.runner_id)) return;
  const auto job = context_.store.get_job(job_id);
  const std::string reason = job && job->error.is_object()
                                 ? job->error.value("message", "")
                                 : "a job on it ended because it did not answer";
  pool_->backend_failed(device_.runner_id, reason);
}

void Worker::start_runner_for_check() {
  if (!device_.device.empty() || context_.runner.pid() != 0) return;
  try {
    context_.runner.ensure_started();  // its hello names the device the check is for
    publish("busy", RunnerMemoryReport{});
  } catch (const Error&) {
    // The run that follows reports the failure to start as the job's error.
  }
}

bool Worker::runner_crashed(const std::string& job_id) {
  const auto job = context_.store.get_job(job_id);
  return job && job->error.is_object() && job->error.value("code", "") == "runner_crashed";
}

std::optional<nlohmann::json> Worker::make_room() {
  const int64_t need = context_.settings.runner_memory_need_bytes;
  if (!budget_ || need <= 0 || context_.runner.pid() != 0) return std::nullopt;
  try {
    budget_->make_room(budget_id(), device_name(), need);
    return std::nullopt;
  } catch (const Error& e) {
    return nlohmann::json{{"code", e.code_name()}, {"message", e.what()}, {"details", e.details()}};
  }
}

bool Worker::stop_for_room() {
  // Long enough for a runner to shut down, and for a worker waiting on the queue to wake.
  const auto wait = std::chrono::milliseconds(2 * context_.runner.kill_grace_ms() +
                                              context_.settings.poll_ms);
  std::unique_lock lock(room_mutex_);
  room_requested_ = true;
  room_answer_.reset();
  context_.queue.wake();
  room_answered_.wait_for(lock, wait, [this] { return room_answer_.has_value(); });
  room_requested_ = false;
  return room_answer_.value_or(false);
}

void Worker::answer_room_request(bool busy) {
  {
    std::lock_guard lock(room_mutex_);
    if (!room_requested_ || room_answer_) return;
    if (busy) {
      room_answer_ = false;
      room_answered_.notify_all();
      return;
    }
  }
  if (context_.runner.pid() != 0) {
    const std::string ended = context_.runner.stop();
    telemetry::service_log().info("worker " + context_.settings.worker_id +
                                  ": idle runner stopped to make room on its device (" + ended +
                                  ")");
    publish("idle", RunnerMemoryReport{});
  }
  std::lock_guard lock(room_mutex_);
  room_answer_ = context_.runner.pid() == 0;
  room_answered_.notify_all();
}

void Worker::free_now() {
  context_.runner.free_memory();
  publish("busy", RunnerMemoryReport{});
}

void Worker::wait_for_backends() {
  while (!context_.stop.stop_requested()) {
    try {
      context_.store.ping();
      context_.blobs.check_writable();
      return;
    } catch (const std::exception& e) {
      report_pause(e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(context_.settings.poll_ms));
    }
  }
}

void Worker::run(std::stop_token stop) {
  context_.stop = stop;
  if (!bring_up()) return;  // out of rotation: the other devices keep working
  if (!context_.settings.prewarm.empty() && !is_backend_runner(device_.runner_id)) {
    held_.models = prewarm(context_.runner, context_.settings.prewarm, context_.settings.temp_dir,
                           static_cast<int>(context_.settings.step_timeout_ms));
    publish("idle", held_);
  }
  while (!stop.stop_requested() && !out_of_rotation_) {
    answer_room_request(false);
    if (free_requested_.exchange(false)) {
      context_.runner.free_memory();
      publish("idle", RunnerMemoryReport{});
    }
    if (!backend_answers()) {  // a probe of the catalog brings it back
      std::this_thread::sleep_for(std::chrono::milliseconds(context_.settings.poll_ms));
      continue;
    }
    try {
      const bool ran_job = run_once(context_.settings.poll_ms);
      report_resume();
      if (idle_stop_.stop_due(ran_job, context_.runner.pid() != 0)) {  // between jobs: drained
        telemetry::service_log().info("worker " + context_.settings.worker_id + ": runner idle for " +
                                      std::to_string(context_.settings.runner_idle_stop_ms / 1000) +
                                      " s, stopped (" + context_.runner.stop() + ")");
        publish("idle", RunnerMemoryReport{});
      }
    } catch (const std::exception& e) {
      // Claiming pauses while a backend is down; a job keeps its lease until it expires and is
      // then claimed again: nothing is lost.
      report_pause(e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(context_.settings.poll_ms));
    }
  }
  context_.runner.stop();
  if (pool_ && !out_of_rotation_) publish("stopped", RunnerMemoryReport{});
}

void Worker::report_pause(const std::string& error) {
  if (error == paused_by_) return;
  paused_by_ = error;
  telemetry::service_log().error("worker " + context_.settings.worker_id +
                                 ": claiming paused, retrying every " +
                                 std::to_string(context_.settings.poll_ms) + " ms: " + error);
}

void Worker::report_resume() {
  if (paused_by_.empty()) return;
  paused_by_.clear();
  telemetry::service_log().info("worker " + context_.settings.worker_id + ": claiming again");
}

void Worker::request_free() {
  free_requested_ = true;
  context_.queue.wake();
}

}  // namespace df::worker
