// The workers of one process and their devices.
#include "worker/device_pool.h"

#include <algorithm>

#include "core/error.h"
#include "core/ids.h"
#include "telemetry/service_log.h"

namespace df::worker {
namespace {

bool all_digits(const std::string& text) {
  return !text.empty() && text.size() <= 4 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The code of a job's error while it waits for a runner (and of the event that says so).
constexpr const char* kWaitingForRunner = "waiting_for_runner";

}  // namespace

std::vector<std::string> parse_device_list(const std::vector<std::string>& entries) {
  std::vector<std::string> devices;
  for (const auto& entry : entries) {
    std::string device;
    if (entry == "cpu") {
      device = "cpu";
    } else if (all_digits(entry)) {
      device = "cuda:" + std::to_string(std::stoi(entry));
      if (std::find(devices.begin(), devices.end(), device) != devices.end()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "DREAMFORGE_DEVICES lists GPU " + entry + " twice (one worker per GPU)");
      }
    } else {
      throw Error(ErrorCode::kInvalidArgument,
                  "DREAMFORGE_DEVICES: '" + entry + "' is neither a GPU index (0, 1, …) nor cpu");
    }
    devices.push_back(device);
  }
  return devices;
}

std::string runner_device_flag(const std::string& device) {
  return device.starts_with("cuda:") ? "cuda" : "cpu";
}

std::vector<std::string> runner_device_environment(const std::string& device) {
  if (!device.starts_with("cuda:")) return {"CUDA_VISIBLE_DEVICES="};
  return {"CUDA_VISIBLE_DEVICES=" + device.substr(5), "CUDA_DEVICE_ORDER=PCI_BUS_ID"};
}

std::string hello_mismatch(const std::string& device, const std::string& hello_device,
                           const std::vector<std::string>& hello_devices) {
  const std::string wanted = runner_device_flag(device);
  if (std::find(hello_devices.begin(), hello_devices.end(), wanted) == hello_devices.end()) {
    return "its runner sees no " + wanted + " device";
  }
  if (!hello_device.starts_with(wanted)) {
    return "its runner said hello on " + (hello_device.empty() ? "no device" : hello_device) +
           ", not " + wanted;
  }
  return "";
}

bool CrashStreak::record(bool runner_gone) {
  streak_ = runner_gone ? streak_ + 1 : 0;
  return streak_ >= kCrashesBeforeRotation;
}

std::vector<std::string> job_checkpoints(const Job& job) {
  std::vector<std::string> checkpoints;
  if (job.type == "generate") {
    const std::string checkpoint = job.spec.value("checkpoint", "");
    if (!checkpoint.empty()) checkpoints.push_back(checkpoint);
    return checkpoints;
  }
  const auto workflow = job.spec.value("workflow", nlohmann::json::object());
  if (!workflow.is_object()) return checkpoints;
  for (const auto& [id, node] : workflow.items()) {
    if (!node.is_object() || !node.contains("inputs") || !node["inputs"].is_object()) continue;
    const auto& name = node["inputs"].value("ckpt_name", nlohmann::json());
    if (name.is_string()) checkpoints.push_back(name.get<std::string>());
  }
  return checkpoints;
}

int64_t runner_wait_ms(const nlohmann::json& last_error, const std::string& reason) {
  const bool same = last_error.is_object() && last_error.value("code", "") == kWaitingForRunner &&
                    last_error.value("message", "") == reason;
  if (!same) return kRunnerWaitMs;
  const nlohmann::json details = last_error.value("details", nlohmann::json::object());
  const nlohmann::json last = details.is_object() ? details.value("wait_ms", nlohmann::json()) : nullptr;
  const int64_t previous = last.is_number_integer() ? last.get<int64_t>() : kRunnerWaitMs;
  return std::clamp(previous * 2, kRunnerWaitMs, kRunnerWaitMaxMs);
}

DevicePool::DevicePool(gpu::RunnerRoster& roster, store::Store& store, BackendHealth* backends)
    : roster_(roster), store_(store), backends_(backends) {}

void DevicePool::join(const gpu::RunnerState& state, std::function<void()> request_free) {
  roster_.update(state);
  std::lock_guard lock(mutex_);
  free_requests_[state.worker_id] = std::move(request_free);
}

void DevicePool::request_free(const std::string& worker_id) {
  std::function<void()> request;
  {
    std::lock_guard lock(mutex_);
    auto it = free_requests_.find(worker_id);
    if (it == free_requests_.end()) return;
    request = it->second;
  }
  request();
}

std::optional<queue::Delivery> DevicePool::take_handed(const std::string& worker_id) {
  std::lock_guard lock(mutex_);
  auto it = handed_.find(worker_id);
  if (it == handed_.end()) return std::nullopt;
  queue::Delivery delivery = std::move(it->second);
  handed_.erase(it);
  return delivery;
}

RunnerChoice DevicePool::choose(const Job& job, const std::string& claimer) const {
  RunnerChoiceInput input{job_runners(job), claimer, roster_.all(), {}, job_checkpoints(job)};
  for (auto& runner : input.roster) {
    if (!is_backend_runner(runner.runner_id)) continue;
    if (!backend_up(runner.runner_id)) input.down.insert(runner.runner_id);
    runner.queue_remaining = backend_queue(runner.runner_id);
  }
  return choose_runner(input);
}

bool DevicePool::hand_over(const queue::Delivery& delivery, const std::string& from,
                           const std::string& to, int64_t lease_ms) {
  auto peer = roster_.find(to);
  if (!peer) return false;
  const Lease lease{delivery.job.id, from, delivery.job.attempts};
  if (!store_.requeue_job(lease, now_ms(), nullptr, /*attempt_counts=*/false)) return false;
  // The job is queued and due: claimed at once under the peer, unless another process's worker
  // was quicker (then it runs there, which is fine too).
  auto job = store_.claim_job_by_id(delivery.job.id, to, lease_ms);
  if (!job) return true;
  peer->state = "busy";
  roster_.update(*peer);
  const bool warm = holds_warm(*peer, job_checkpoints(*job));
  Event event;
  event.job_id = job->id;
  event.type = "log";
  event.code = "handed_over";
  event.message = "handed from worker " + from + " to worker " + to + " (runner " +
                  peer->runner_id + " on " + peer->device + ")" +
                  (warm ? ", whose runner has its model warm" : ", an idle runner that can run it");
  event.plain = warm ? "Your job goes to the device that already has its model loaded."
                     : "Your job goes to a runner that is free to run it.";
  event.data = {{"source", "worker"}, {"from", from}, {"to", to}, {"runner", peer->runner_id},
                {"device", peer->device}};
  event.created_ms = now_ms();
  const Lease handed_lease{job->id, to, job->attempts};
  store_.append_event(event, &handed_lease);
  std::lock_guard lock(mutex_);
  handed_[to] = queue::Delivery{std::move(*job), delivery.receipt};
  return true;
}

bool DevicePool::hold_back(const queue::Delivery& delivery, const std::string& from,
                           const std::string& reason, queue::Queue& queue) {
  const Job& job = delivery.job;
  const Lease lease{job.id, from, job.attempts};
  const bool told = job.error.is_object() && job.error.value("code", "") == kWaitingForRunner &&
                    job.error.value("message", "") == reason;
  const int64_t wait_ms = runner_wait_ms(job.error, reason);
  bool appended = false;
  if (!told) {
    Event event;
    event.job_id = job.id;
    event.type = "log";
    event.code = kWaitingForRunner;
    event.message = "put back in the queue by worker " + from + ": " + reason;
    event.plain = reason;
    event.data = {{"source", "worker"}, {"runners", job_runners(job)}};
    event.created_ms = now_ms();
    appended = store_.append_event(event, &lease) != 0;
  }
  const int64_t run_after_ms = now_ms() + wait_ms;
  const nlohmann::json error = {
      {"code", kWaitingForRunner}, {"message", reason}, {"details", {{"wait_ms", wait_ms}}}};
  if (store_.requeue_job(lease, run_after_ms, error, /*attempt_counts=*/false)) {
    queue.settle(delivery, {queue::Settlement::kRetry, run_after_ms, nullptr});
  }
  return appended;
}

bool DevicePool::backend_up(const std::string& runner_id) const {
  return !backends_ || !is_backend_runner(runner_id) || backends_->up(runner_id);
}

int DevicePool::backend_queue(const std::string& runner_id) const {
  return backends_ && is_backend_runner(runner_id) ? backends_->queue_remaining(runner_id) : 0;
}

void DevicePool::backend_failed(const std::string& runner_id, const std::string& reason) {
  if (backends_ && is_backend_runner(runner_id)) backends_->mark_down(runner_id, reason);
}

void DevicePool::take_out_of_rotation(const std::string& worker_id, const std::string& reason) {
  auto state = roster_.find(worker_id);
  if (!state) return;
  state->state = "out_of_rotation";
  state->reason = reason;
  state->pid = 0;
  state->models.clear();
  state->models_bytes = 0;
  state->memory_used_bytes = 0;
  roster_.update(*state);
  auto& log = telemetry::service_log();
  log.error("device " + state->device + " taken out of rotation: " + reason);
  const auto runners = roster_.all();
  if (std::all_of(runners.begin(), runners.end(),
                  [](const gpu::RunnerState& r) { return r.state == "out_of_rotation"; })) {
    log.error("dreamforge: every device is out of rotation: no job will run until the service is "
              "restarted with a working device");
  }
}

}  // namespace df::worker
