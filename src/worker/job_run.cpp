// Runs one claimed job in the runner and records everything it does.
#include "worker/job_run.h"

#include <filesystem>
#include <numeric>
#include <random>
#include <thread>

#include "core/base64.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/job_spec.h"
#include "core/files.h"
#include "core/numbers.h"
#include "core/sha256.h"
#include "http/client.h"
#include "runner/protocol.h"
#include "telemetry/service_log.h"
#include "telemetry/service_metrics.h"
#include "worker/failure_policy.h"
#include "worker/process_memory.h"

namespace df::worker {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
namespace metric = telemetry;

json error_json(const std::string& code, const std::string& message, json details = json::object()) {
  return {{"code", code}, {"message", message}, {"details", std::move(details)}};
}

uint64_t draw_seed() {
  std::random_device device;
  std::uniform_int_distribution<uint64_t> dist(0, (uint64_t{1} << 48) - 1);
  return dist(device);
}

// "20261122T133000Z": the job's creation time in artifact keys.
std::string compact_timestamp(int64_t epoch_ms) {
  std::string iso = iso8601_utc(epoch_ms);  // 2026-11-22T13:30:00.123Z
  std::string out;
  for (char c : iso.substr(0, 19)) {
    if (c != '-' && c != ':') out += c;
  }
  return out + "Z";
}

std::string plain_error(const std::string& code) {
  if (code == "oom") return "The device ran out of memory for this job.";
  if (code == "insufficient_memory") return "The device does not have enough free memory for this job's preset.";
  if (code == "timeout") return "The job took too long and was stopped.";
  if (code == "runner_crashed") return "The image engine stopped unexpectedly.";
  if (code == "runner_hung") return "The image engine stopped responding and was restarted.";
  if (code == "model_not_found") return "The model this job needs is not installed.";
  if (code == "validation") return "The job's settings were not accepted.";
  if (code == "canceled") return "The job was canceled.";
  return "Something went wrong while making your image.";
}

// A streamed_image event of the runner: the PNG goes to the live-image sink (when there is one)
// under a fresh frame id, and `out` becomes the job's record of it, the frame id included, without
// the pixels.
void relay_streamed_image(const runner::StreamedImageEvent& event, const Job& job,
                          const WorkerContext& context, Event& out) {
  out.type = "streamed_image";
  out.message = "image " + std::to_string(event.index + 1) + "/" + std::to_string(event.count) +
                " of node " + event.node + " streamed to the client";
  out.data = {{"node", event.node},
              {"index", event.index},
              {"count", event.count},
              {"width", event.width},
              {"height", event.height}};
  auto png = decode_base64(event.data);
  if (!png) return;
  out.data["bytes"] = png->size();
  if (!context.on_live_image) return;
  const std::string frame_id = new_uuid_v7();
  out.data["frame"] = frame_id;
  context.on_live_image(job, {event.node, "image/png", std::move(*png), frame_id});
}

// A file or folder name a runner gave an artifact, safe to use under the output folder: relative,
// without "." or ".." parts (a filename also without '/'); throws Error(kProtocol) otherwise.
fs::path safe_relative(const std::string& name, bool single_part, const char* what) {
  const fs::path path(name);
  bool safe = !path.is_absolute() && (!single_part || name.find('/') == std::string::npos);
  for (const auto& part : path) safe = safe && part != "." && part != "..";
  if (!safe || (single_part && name.empty())) {
    throw Error(ErrorCode::kProtocol, std::string("an artifact's ") + what + " '" + name +
                                          "' is not a plain name inside the output folder");
  }
  return path;
}

// The bytes at an artifact's http:// URL; Error(kUnavailable) when the server cannot be reached,
// Error(kProtocol) for another URL or an answer other than 200.
std::vector<uint8_t> fetch_artifact(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    throw Error(ErrorCode::kProtocol, "an artifact's url must be http://: '" + url + "'");
  }
  const size_t slash = url.find('/', scheme.size());
  const std::string base = url.substr(0, slash);
  const std::string target = slash == std::string::npos ? "/" : url.substr(slash);
  http::ClientResponse response;
  try {
    response = http::Client(base, 60000).get(target);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) throw;
    throw Error(ErrorCode::kProtocol, "an artifact's url cannot be fetched: " + std::string(e.what()));
  }
  if (response.status != 200) {
    throw Error(ErrorCode::kProtocol, "the artifact's url " + url + " answered " +
                                          std::to_string(response.status));
  }
  return {response.body.begin(), response.body.end()};
}

// The image size and batch a job asks for: a generate job's own fields; for a workflow, the node
// with the largest literal width x height x batch_size (an empty latent, a resize), null for none.
json requested_size(const Job& job) {
  if (job.type != "workflow") {
    return {{"width", job.spec.value("width", 0)},
            {"height", job.spec.value("height", 0)},
            {"count", job.spec.value("count", 1)}};
  }
  json largest;
  int64_t largest_pixels = 0;
  const json workflow = job.spec.value("workflow", json::object());
  for (const auto& [node, body] : workflow.items()) {
    const json inputs = body.is_object() ? body.value("inputs", json::object()) : json::object();
    if (!inputs.is_object()) continue;
    const json width = inputs.value("width", json()), height = inputs.value("height", json());
    if (!width.is_number_integer() || !height.is_number_integer()) continue;
    const json batch = inputs.value("batch_size", json(1));
    const int64_t count = batch.is_number_integer() ? batch.get<int64_t>() : 1;
    const int64_t pixels = width.get<int64_t>() * height.get<int64_t>() * count;
    if (pixels <= largest_pixels) continue;
    largest_pixels = pixels;
    largest = {{"node", node}, {"class_type", body.value("class_type", "")},
               {"width", width}, {"height", height}, {"batch_size", count}};
  }
  return largest;
}

// Whether an earlier attempt of the job ran: it was claimed before and did not come back from a
// wait for a runner (a wait ran nothing and used up no attempt, but counts in attempts).
bool ran_before(const Job& job) {
  return job.attempts > 1 &&
         !(job.error.is_object() && job.error.value("code", "") == "waiting_for_runner");
}

double seconds_since(int64_t epoch_ms) { return static_cast<double>(now_ms() - epoch_ms) / 1000.0; }

}  // namespace

JobRun::JobRun(queue::Delivery delivery, WorkerContext& context)
    : delivery_(std::move(delivery)),
      job_(delivery_.job),
      lease_{job_.id, context.settings.worker_id, job_.attempts},
      context_(context) {}

void JobRun::execute() {
  if (!ran_before(job_)) {
    context_.metrics.observe(metric::kJobQueueWait, {}, seconds_since(job_.created_ms));
  }
  if (job_.cancel_requested) {
    finish(JobStatus::kCanceled, error_json("canceled", "canceled before it started"));
    return;
  }
  if (job_.attempts > job_.max_attempts) {
    json last = job_.error.is_null()
                    ? error_json("runner_crashed", "the worker running it stopped responding")
                    : job_.error;
    last["message"] = "gave up after " + std::to_string(job_.max_attempts) +
                      " attempts: " + last.value("message", std::string());
    finish(JobStatus::kFailed, last);
    return;
  }
  if (context_.before_start) {
    if (auto refusal = context_.before_start(job_)) {  // its memory need does not fit its device
      conclude({"failed", *refusal});
      return;
    }
  }
  prepare_items();
  Event started;
  started.type = "job_started";
  started.message = "attempt " + std::to_string(job_.attempts) + " of " +
                    std::to_string(job_.max_attempts) + " on " + lease_.worker_id;
  started.plain = ran_before(job_) ? "Your job is being retried." : "Your job has started.";
  started.data = {{"attempt", job_.attempts}, {"max_attempts", job_.max_attempts}};
  emit(started);
  if (lost_) return;
  if (pending_items().empty()) {
    conclude({"succeeded", nullptr});
    return;
  }
  json graph;
  try {
    graph = job_graph(job_);
  } catch (const Error& e) {
    conclude({"failed", error_json(std::string(e.code_name()), e.what(), e.details())});
    return;
  }
  conclude(run_in_runner(graph));
}

void JobRun::prepare_items() {
  if (job_.items.empty()) {
    items_ = plan_items(job_, draw_seed);
  } else {
    items_ = job_.items;
    for (auto& item : items_) {
      if (item.status == "succeeded") continue;
      item.status = "queued";
      item.step = 0;
      item.progress = 0;
    }
  }
  save_items();
}

std::vector<const JobItem*> JobRun::pending_items() const {
  std::vector<const JobItem*> pending;
  for (const auto& item : items_) {
    if (item.status != "succeeded") pending.push_back(&item);
  }
  return pending;
}

JobRun::Outcome JobRun::run_in_runner(const json& graph) {
  runner::RunnerProcess* runner = nullptr;
  try {
    runner = &context_.runner.ensure_started();
  } catch (const Error& e) {
    return {"failed", error_json(std::string(e.code_name()), e.what(), e.details())};
  }
  runner_pid_ = context_.runner.memory_pid();  // a container's main process, not its client
  step_.job_id = job_.id;
  step_.runner = context_.runner.executable();
  step_.device = context_.runner.device();
  step_.started_ms = now_ms();
  memory_probe_.emplace(step_.device, cuda_device_index(step_.device) ? gpu::system_nvml() : nullptr);
  step_.memory_kind = memory_probe_->memory_kind();
  step_.gpu_mem_used_before = memory_probe_->used(runner_pid_);
  step_.peak_gpu_mem_used = step_.gpu_mem_used_before;
  free_memory_at_start_ = memory_probe_->free_bytes();
  memory_probe_->reset_peak(runner_pid_);
  step_.id = context_.store.start_step(lease_, step_);
  if (step_.id == 0) return {"lost", nullptr};

  const std::string run_id = job_.id + "/" + std::to_string(job_.attempts);
  Outcome outcome;
  try {
    runner->send(runner::to_json(runner::Request{run_request(graph, run_id)}));
    outcome = follow(*runner, run_id);
  } catch (const Error& e) {
    const std::string ended = stop_runner();
    outcome = {"failed", error_json("runner_crashed",
                                    std::string("lost contact with the runner: ") + e.what() +
                                        " (the runner " + ended + ")")};
  }

  step_.finished_ms = now_ms();
  step_.status = outcome.status == "lost" ? "abandoned" : outcome.status;
  account_memory(outcome);
  if (outcome.status == "failed" && outcome.error.value("code", "") == "oom") {
    add_oom_details(outcome.error);
  }
  step_.error = outcome.error;
  context_.store.finish_step(step_);
  context_.metrics.observe(metric::kStepDuration, {{"status", step_.status}},
                           static_cast<double>(step_.finished_ms - step_.started_ms) / 1000.0);
  for (const auto& [phase, bytes] : {std::pair{"before", step_.gpu_mem_used_before},
                                     std::pair{"after", step_.gpu_mem_used_after},
                                     std::pair{"peak", step_.peak_gpu_mem_used}}) {
    context_.metrics.set_gauge(metric::kRunnerMemory, {{"device", step_.device}, {"phase", phase}},
                               static_cast<double>(bytes));
  }
  return outcome;
}

std::string JobRun::stop_runner(bool graceful) {
  runner_stopped_ = true;
  return graceful ? context_.runner.stop() : context_.runner.kill();
}

void JobRun::account_memory(const Outcome& outcome) {
  if (outcome.status == "lost") return;  // another worker has the job: nothing more is written
  const bool failed = outcome.status == "failed";
  if (failed && !runner_stopped_ && failure_retires_runner(outcome.error.value("code", ""))) {
    stop_runner(/*graceful=*/true);  // it reported the failure itself, but is not trusted again
  }
  if (runner_stopped_) {
    wait_for_stopped_runner();
  } else {
    check_memory_returned();
  }
}

void JobRun::wait_for_stopped_runner() {
  const RunnerMemoryProbe& probe = *memory_probe_;
  const pid_t pid = runner_pid_;
  const int64_t bound_ms = context_.settings.memory_release_wait_ms;
  const ReleaseWait wait = wait_for_release(
      {[&] { return probe.held_after_stop(pid); },
       [] { return std::chrono::duration_cast<std::chrono::milliseconds>(
                       Clock::now().time_since_epoch()).count(); },
       [](int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }},
      bound_ms);
  step_.gpu_mem_used_after = wait.held_bytes;
  const std::string where = step_.memory_kind + " on " + step_.device;
  Event out;
  out.type = "gpu";
  out.code = wait.released ? "memory_released" : "memory_not_released";
  out.message = wait.released
                    ? "the stopped runner (pid " + std::to_string(pid) + ") held no more memory (" +
                          where + ") after " + std::to_string(wait.waited_ms) + " ms"
                    : "the stopped runner (pid " + std::to_string(pid) + ") still held " +
                          bytes_in_words(wait.held_bytes) + " (" + where + ") after " +
                          std::to_string(wait.waited_ms) + " ms";
  out.plain = wait.released ? "The memory the stopped job used was given back."
                            : "The memory the stopped job used was not all given back in time; "
                              "the device may have less free memory for a while.";
  out.data = {{"memory_kind", step_.memory_kind},
              {"device", step_.device},
              {"pid", pid},
              {"waited_ms", wait.waited_ms},
              {"wait_bound_ms", bound_ms},
              {"held_bytes", wait.held_bytes},
              {"gpu_mem_used_before", step_.gpu_mem_used_before},
              {"peak_gpu_mem_used", step_.peak_gpu_mem_used}};
  emit(out);
}

void JobRun::check_memory_returned() {
  sample_memory(runner_pid_);
  StepMemory memory;
  memory.memory_kind = step_.memory_kind;
  memory.device = step_.device;
  memory.gpu_mem_used_before = step_.gpu_mem_used_before;
  memory.gpu_mem_used_after = step_.gpu_mem_used_after = memory_probe_->used(runner_pid_);
  memory.peak_gpu_mem_used = step_.peak_gpu_mem_used;
  memory.models_bytes_before = memory_at_start_.models_bytes;
  memory.models_bytes_after = memory_at_end_.models_bytes;
  if (memory.memory_kind == "cuda") {
    memory.cuda_context_bytes = cuda_context_created(memory.gpu_mem_used_before,
                                                     memory.gpu_mem_used_after, memory_at_end_);
  }
  const int64_t epsilon = context_.settings.memory_epsilon_bytes;
  const bool returned = memory_returned(memory, epsilon);
  Event out;
  out.type = "gpu";
  out.code = returned ? "memory_returned" : "memory_not_returned";
  out.message = "runner memory (" + memory.memory_kind + " on " + memory.device + "): before " +
                bytes_in_words(memory.gpu_mem_used_before) + ", after " +
                bytes_in_words(memory.gpu_mem_used_after) + ", peak " +
                bytes_in_words(memory.peak_gpu_mem_used) + "; models kept warm " +
                bytes_in_words(memory.models_bytes_before) + " -> " +
                bytes_in_words(memory.models_bytes_after) + "; " +
                (returned ? "within " : "more than ") + bytes_in_words(epsilon) + " left behind";
  out.plain = returned ? "The memory this job used was given back."
                       : "Some memory this job used was not given back; the service keeps "
                         "working, but may have less free memory for the next jobs.";
  out.data = {{"memory_kind", memory.memory_kind},
              {"device", memory.device},
              {"gpu_mem_used_before", memory.gpu_mem_used_before},
              {"gpu_mem_used_after", memory.gpu_mem_used_after},
              {"peak_gpu_mem_used", memory.peak_gpu_mem_used},
              {"models_bytes_before", memory.models_bytes_before},
              {"models_bytes_after", memory.models_bytes_after},
              {"epsilon_bytes", epsilon}};
  if (memory.cuda_context_bytes > 0) out.data["cuda_context_bytes"] = memory.cuda_context_bytes;
  emit(out);
  if (!returned) {
    telemetry::service_log().error("worker " + lease_.worker_id + ": job " + job_.id + ": " +
                                   out.message);
  }
}

void JobRun::add_oom_details(json& error) const {
  json& details = error["details"];
  if (!details.is_object()) details = json::object();
  details["memory_kind"] = step_.memory_kind;
  details["device"] = step_.device;
  details["peak_gpu_mem_used"] = step_.peak_gpu_mem_used;
  details["free_bytes_at_start"] = free_memory_at_start_;
  details["requested"] = requested_size(job_);
  const json preset = job_.spec.value("memory_need", json());
  details["preset"] = preset;
  const bool gpu = step_.memory_kind == "cuda";
  std::string suggestion = "Try a smaller image size or batch";
  suggestion += preset.is_object() ? ", or a preset below '" + preset.value("preset", "") + "'"
                                   : ", or a smaller model";
  suggestion += gpu ? "; or close other programs that use the GPU's memory."
                    : "; or close other programs to free the computer's memory.";
  details["suggestion"] = suggestion;
}

runner::RunRequest JobRun::run_request(const json& graph, const std::string& run_id) const {
  runner::RunRequest run;
  run.id = run_id;
  run.graph = graph;
  for (const auto* item : pending_items()) run.items.push_back({item->index, item->seed});
  run.output_dir = context_.settings.output_dir;
  run.temp_dir = context_.settings.temp_dir;
  run.format = job_output_format(job_);
  run.extra_pnginfo = job_extra_pnginfo(job_);
  run.previews = job_wants_previews(job_) && context_.on_live_image;
  return run;
}

JobRun::Outcome JobRun::protocol_break(const std::string& what) {
  const std::string ended = stop_runner();
  return {"failed", error_json("runner_crashed",
                               "the runner broke the protocol and was stopped: " + what + " (it " +
                                   ended + ")",
                               {{"reason", "protocol"}})};
}

JobRun::Outcome JobRun::hung() {
  const std::string ended = stop_runner();
  const int64_t silence_s = context_.settings.runner_silence_ms / 1000;
  return {"failed", error_json("runner_hung",
                               "the runner sent nothing for " + std::to_string(silence_s) +
                                   " s in the middle of a run and was stopped as hung (it " +
                                   ended + ")",
                               {{"silence_ms", context_.settings.runner_silence_ms}, {"exit", ended}})};
}

JobRun::Outcome JobRun::follow(runner::RunnerProcess& runner, const std::string& run_id) {
  const auto started = Clock::now();
  const auto timeout = std::chrono::milliseconds(context_.settings.step_timeout_ms);
  const auto silence_limit = std::chrono::milliseconds(context_.settings.runner_silence_ms);
  last_heartbeat_ = last_cancel_check_ = started;
  auto last_heard = started;
  bool cancel_sent = false;
  while (true) {
    std::optional<runner::Event> event;
    try {
      if (auto message = runner.next_event(200)) {
        last_heard = Clock::now();
        event = runner::parse_event(*message);
      }
    } catch (const Error& e) {
      return protocol_break(e.what());
    }
    sample_memory(runner_pid_);
    if (event) {
      try {
        handle(*event);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kProtocol) return protocol_break(e.what());
        // The database or the storage could not take the run's results (or the server holding an
        // artifact could not be reached): the run stops, and the error is theirs, not the runner's.
        const std::string ended = stop_runner();
        return {"failed", error_json(std::string(e.code_name()),
                                     std::string("could not record the run's results: ") +
                                         e.what() + " (the runner was stopped: it " + ended + ")",
                                     e.details())};
      }
      if (const auto* finished = std::get_if<runner::RunFinishedEvent>(&*event)) {
        if (finished->status == "succeeded") return {"succeeded", nullptr};
        if (finished->status == "canceled") {
          return {"canceled", error_json("canceled", "canceled while running")};
        }
        return {"failed", runner_error_.is_null()
                              ? error_json("internal", "the runner reported a failed run")
                              : runner_error_};
      }
    } else if (runner.output_closed()) {
      const std::string ended = stop_runner();
      return {"failed", error_json("runner_crashed", "the runner " + ended + " during the job",
                                   {{"exit", ended}})};
    }
    if (Clock::now() - started > timeout) {
      const pid_t pid = runner.pid();
      const std::string ended = stop_runner();
      json details = {{"timeout_ms", context_.settings.step_timeout_ms},
                      {"exit", ended},
                      {"runner_gone", !process_exists(pid)}};
      return {"failed", error_json("timeout",
                                   "the step ran longer than " +
                                       std::to_string(context_.settings.step_timeout_ms / 1000) +
                                       " s; the runner was stopped (TERM, then KILL) and " + ended,
                                   details)};
    }
    if (silence_limit.count() > 0 && Clock::now() - last_heard > silence_limit) return hung();
    if (context_.stop.stop_requested()) {
      const std::string ended = stop_runner();
      return {"handed_back", error_json("unavailable", "the worker shut down during the job (the runner " +
                                                           ended + "); it runs again")};
    }
    if (!keep_lease() || lost_) {
      stop_runner();
      return {"lost", nullptr};
    }
    if (!cancel_sent && Clock::now() - last_cancel_check_ > std::chrono::milliseconds(300)) {
      last_cancel_check_ = Clock::now();
      auto current = context_.store.get_job(job_.id);
      if (current && current->cancel_requested) {
        runner.send(runner::to_json(runner::Request{runner::CancelRequest{run_id}}));
        cancel_sent = true;
      }
    }
  }
}

void JobRun::handle(const runner::Event& event) {
  std::visit(
      [this](const auto& message) {
        if constexpr (requires { this->on(message); }) this->on(message);
      },
      event);
}

JobItem* JobRun::find_item(int index) {
  auto item = std::find_if(items_.begin(), items_.end(), [&](const JobItem& i) { return i.index == index; });
  return item == items_.end() ? nullptr : &*item;
}

// run_started and run_finished carry the runner's own memory report (the step's event sums it up).
void JobRun::on(const runner::RunStartedEvent& event) {
  memory_at_start_ = read_runner_memory({{"memory", event.memory}}, step_.memory_kind);
}

void JobRun::on(const runner::RunFinishedEvent& event) {
  memory_at_end_ = read_runner_memory({{"memory", event.memory}}, step_.memory_kind);
}

void JobRun::on(const runner::ItemStartedEvent& event) {
  JobItem* item = find_item(event.item_index);
  if (!item) return;
  item->status = "running";
  item_started_[item->index] = Clock::now();
  save_items();
  Event out;
  out.item_index = item->index;
  out.type = "item_started";
  out.message = "item " + std::to_string(item->index) + " started with seed " + std::to_string(item->seed);
  out.plain = "Image " + std::to_string(item->index + 1) + " of " + std::to_string(items_.size()) + " has started.";
  out.data = {{"seed", item->seed}};
  emit(out);
}

void JobRun::on(const runner::ProgressEvent& event) {
  JobItem* item = find_item(event.item_index);
  if (!item) return;
  item->step = static_cast<int>(event.step);
  item->total_steps = static_cast<int>(event.total);
  item->progress = event.progress;
  save_items();
  Event out;
  out.item_index = item->index;
  out.type = "progress";
  out.message = "step " + std::to_string(item->step) + "/" + std::to_string(item->total_steps);
  out.data = {{"step", item->step},
              {"total_steps", item->total_steps},
              {"item_progress", item->progress},
              {"node", event.node}};
  if (const auto left = estimated_seconds_left(job_)) out.data["eta_seconds_left"] = *left;
  emit(out);
}

void JobRun::on(const runner::ItemFinishedEvent& event) {
  JobItem* item = find_item(event.item_index);
  if (!item) return;
  item->status = "succeeded";
  item->progress = 1;
  item->step = item->total_steps;
  save_items();
  context_.metrics.increment(metric::kBatchItems, {{"status", "succeeded"}});
  if (item_started_.count(item->index)) {
    context_.metrics.observe(metric::kItemDuration, {},
                             std::chrono::duration<double>(Clock::now() - item_started_[item->index]).count());
  }
  Event out;
  out.item_index = item->index;
  out.type = "item_finished";
  out.message = "item " + std::to_string(item->index) + " finished";
  out.plain = "Image " + std::to_string(item->index + 1) + " of " + std::to_string(items_.size()) + " is ready.";
  out.data = {{"seed", item->seed}, {"duration_ms", event.duration_ms}};
  emit(out);
}

void JobRun::on(const runner::PreviewEvent& event) {
  auto jpeg = decode_base64(event.data);
  if (jpeg && context_.on_live_image) {
    context_.on_live_image(job_, {event.node, "image/jpeg", std::move(*jpeg), ""});
  }
}

void JobRun::on(const runner::StreamedImageEvent& event) {
  Event out;
  out.item_index = event.item_index;
  relay_streamed_image(event, job_, context_, out);  // handed over before its event is stored
  emit(out);
}

void JobRun::on(const runner::ArtifactEvent& event) {
  if (event.kind == "output") {
    store_artifact(event);
    return;
  }
  Event out;  // a preview: shown where it lies, not kept as an artifact
  out.item_index = event.item_index;
  out.type = "temp_image";
  out.message = "preview " + event.filename;
  out.data = {{"node", event.node}, {"filename", event.filename},
              {"subfolder", event.subfolder}, {"kind", "temp"}};
  emit(out);
}

void JobRun::on(const runner::ExecutingEvent& event) {
  Event out;
  out.item_index = event.item_index;
  out.type = "node_started";
  out.message = event.class_type + " (node " + event.node + ")";
  out.data = {{"node", event.node}, {"class_type", event.class_type}};
  emit(out);
}

void JobRun::on(const runner::CachedEvent& event) {
  Event out;
  out.item_index = event.item_index;
  out.type = "nodes_cached";
  out.message = "reused cached outputs of nodes " + json(event.nodes).dump();
  out.data = {{"nodes", event.nodes}};
  emit(out);
}

void JobRun::on(const runner::ErrorEvent& event) {
  runner_error_ = error_json(event.code, event.message, event.details);
  JobItem* item = event.item_index ? find_item(*event.item_index) : nullptr;
  if (item && event.code != "canceled") item->status = "failed";
  Event out;
  out.item_index = event.item_index;
  out.type = "error";
  out.code = event.code;
  out.message = event.message;
  out.plain = plain_error(out.code);
  out.data = {{"details", event.details}};
  emit(out);
}

void JobRun::on(const runner::StageEvent& event) {
  Event out;
  out.item_index = event.item_index;
  out.type = "log";
  out.message = event.stage + ": " + event.class_type + " (node " + event.node + ")";
  out.data = {{"source", "runner"}, {"level", "info"}, {"stage", event.stage},
              {"node", event.node}, {"class_type", event.class_type}};
  emit(out);
}

void JobRun::on(const runner::LogEvent& event) {
  Event out;
  out.type = "log";
  out.message = event.message;
  out.data = {{"source", "runner"}, {"level", event.level}};
  emit(out);
}

std::string JobRun::artifact_file(const runner::ArtifactEvent& event) const {
  if (!event.path.empty()) return event.path;
  const fs::path folder = fs::path(context_.settings.output_dir) /
                          safe_relative(event.subfolder, /*single_part=*/false, "subfolder");
  const fs::path file = folder / safe_relative(event.filename, /*single_part=*/true, "filename");
  std::vector<uint8_t> bytes;
  if (!event.data.empty()) {
    auto decoded = decode_base64(event.data);
    if (!decoded) throw Error(ErrorCode::kProtocol, "an artifact's data is not base64");
    bytes = std::move(*decoded);
  } else {
    bytes = fetch_artifact(event.url);
  }
  fs::create_directories(folder);
  write_file_atomically(file.string(), bytes);
  return file.string();
}

void JobRun::store_artifact(const runner::ArtifactEvent& event) {
  const std::string path = artifact_file(event);
  const int index = event.item_index;
  const std::string node = event.node.empty() ? "0" : event.node;
  const int ordinal = outputs_[{index, node}]++;
  const uint64_t seed = event.seed;
  const int width = event.width;
  const int height = event.height;
  const std::string extension = fs::path(path).extension().string();
  const std::string item_part = std::to_string(index) + (ordinal ? "-" + std::to_string(ordinal) : "");
  Artifact artifact;
  artifact.job_id = job_.id;
  artifact.item_index = index;
  artifact.key = "dreamforge/" + job_.owner + "/jobs/" + job_.id + "/" + node + "/" +
                 compact_timestamp(job_.created_ms) + "_" + item_part + "_" + std::to_string(width) +
                 "x" + std::to_string(height) + "_" + std::to_string(seed) + extension;
  artifact.content_type = event.content_type.empty() ? "application/octet-stream" : event.content_type;
  // A runner that sent bytes or a URL may leave the size and digest to the file.
  artifact.size = event.bytes > 0 ? event.bytes : static_cast<int64_t>(fs::file_size(path));
  artifact.sha256 = event.sha256.empty() ? sha256_file(path) : event.sha256;
  artifact.seed = seed;
  artifact.width = width;
  artifact.height = height;
  if (job_.type == "generate") {
    artifact.metadata = {{"prompt", job_.spec.value("prompt", "")},
                         {"negative_prompt", job_.spec.value("negative_prompt", "")},
                         {"model_id", job_.spec.value("model_id", "")},
                         {"sampler", job_.spec.value("sampler", "")},
                         {"scheduler", job_.spec.value("scheduler", "")},
                         {"steps", job_.spec.value("steps", 0)},
                         {"guidance", job_.spec.value("guidance", 0.0)},
                         {"seed", seed}};
  } else {
    artifact.metadata = {{"seed", seed}};
  }
  // Where the file also lies in the output folder (ComfyUI's /view and /history name it so).
  artifact.metadata["node"] = node;
  artifact.metadata["filename"] = event.filename;
  artifact.metadata["subfolder"] = event.subfolder;
  context_.blobs.put_file(artifact.key, path, artifact.content_type);  // the file stays for /view
  if (!context_.store.put_artifact(lease_, artifact)) {
    lost_ = true;
    return;
  }
  Event out;
  out.type = "artifact";
  out.item_index = index;
  out.message = "stored " + artifact.key;
  out.plain = "Image " + std::to_string(index + 1) + " was saved.";
  out.data = {{"key", artifact.key},       {"content_type", artifact.content_type},
              {"size", artifact.size},     {"sha256", artifact.sha256},
              {"seed", seed},              {"width", width},
              {"height", height},          {"node", node},
              {"filename", event.filename},
              {"subfolder", event.subfolder},
              {"kind", "output"}};
  emit(out);
}

void JobRun::save_items() {
  if (items_.empty()) return;
  double total = 0;
  for (const auto& item : items_) total += item.status == "succeeded" ? 1.0 : item.progress;
  job_.progress = total / static_cast<double>(items_.size());
  if (!context_.store.save_items(lease_, items_, job_.progress)) lost_ = true;
}

void JobRun::emit(Event event) {
  event.job_id = job_.id;
  event.created_ms = now_ms();
  event.data["progress"] = job_.progress;
  if (context_.store.append_event(event, &lease_) == 0) lost_ = true;
  if (context_.on_event) context_.on_event(job_.id);
}

void JobRun::sample_memory(pid_t pid) {
  step_.peak_gpu_mem_used = std::max(step_.peak_gpu_mem_used, memory_probe_->peak(pid));
  if (step_.memory_kind == "cuda") {
    step_.peak_gpu_mem_used = gpu_step_peak(step_.peak_gpu_mem_used, step_.gpu_mem_used_before,
                                            memory_at_start_, memory_at_end_);
  }
}

bool JobRun::keep_lease() {
  if (Clock::now() - last_heartbeat_ < std::chrono::milliseconds(context_.settings.heartbeat_ms)) {
    return true;
  }
  last_heartbeat_ = Clock::now();
  if (!context_.store.renew_lease(lease_, context_.settings.lease_ms)) return false;
  try {
    context_.queue.touch(delivery_);
  } catch (const std::exception& e) {
    // The store's lease is what counts; the queue takes the job back only after it expires.
    telemetry::service_log().error("worker " + lease_.worker_id + ": " + e.what());
  }
  return true;
}

void JobRun::settle(const queue::SettleInfo& info) {
  try {
    context_.queue.settle(delivery_, info);
  } catch (const std::exception& e) {
    // The outcome is in the store; the queue finds out when it dispatches the job again.
    telemetry::service_log().error("worker " + lease_.worker_id + ": " + e.what());
  }
}

void JobRun::conclude(Outcome outcome) {
  if (outcome.status == "lost" || lost_) return;
  if (outcome.status == "succeeded") {
    finish(JobStatus::kSucceeded, nullptr);
    return;
  }
  if (outcome.status == "canceled") {
    for (auto& item : items_) {
      if (item.status != "succeeded") item.status = "canceled";
    }
    save_items();
    finish(JobStatus::kCanceled, outcome.error);
    return;
  }
  const std::string code = outcome.error.value("code", "internal");
  const bool handed_back = outcome.status == "handed_back";
  backend_outage_ = !handed_back && is_backend_outage(code);
  if (!handed_back) context_.metrics.increment(metric::kErrors, {{"code", code}});
  if (handed_back || backend_outage_ ||
      (is_transient(code) && job_.attempts < job_.max_attempts)) {
    const int64_t delay = handed_back ? 0
                                      : retry_delay_ms(job_.attempts, context_.settings.retry_base_ms,
                                                       context_.settings.retry_max_ms);
    Event retry;
    retry.type = "retry_scheduled";
    retry.code = code;
    retry.message = outcome.error.value("message", "") + "; retrying in " +
                    std::to_string(delay) + " ms";
    retry.plain = plain_error(code) + " Trying again shortly.";
    retry.data = {{"attempt", job_.attempts}, {"retry_in_ms", delay}, {"error", outcome.error}};
    emit(retry);
    const int64_t run_after_ms = now_ms() + delay;
    // A shutdown or an outage is no fault of the job: it does not use up one of its attempts.
    const bool attempt_counts = !handed_back && !backend_outage_;
    if (!lost_ && context_.store.requeue_job(lease_, run_after_ms, outcome.error, attempt_counts)) {
      settle({queue::Settlement::kRetry, run_after_ms, nullptr});
    }
    if (context_.on_event) context_.on_event(job_.id);
    return;
  }
  finish(JobStatus::kFailed, outcome.error);
}

void JobRun::finish(JobStatus status, const json& error) {
  const std::string name(job_status_name(status));
  Event terminal;
  terminal.job_id = job_.id;
  terminal.type = "job_finished";
  terminal.code = error.is_null() ? "" : error.value("code", "");
  terminal.message = "job " + name + (error.is_null() ? "" : ": " + error.value("message", ""));
  terminal.plain = status == JobStatus::kSucceeded ? "Your images are ready."
                   : status == JobStatus::kCanceled ? "Your job was canceled."
                                                    : plain_error(terminal.code);
  terminal.data = {{"status", name}, {"progress", status == JobStatus::kSucceeded ? 1.0 : job_.progress}};
  if (!error.is_null()) terminal.data["error"] = error;
  terminal.created_ms = now_ms();
  if (!context_.store.finish_job(lease_, status, error, terminal)) return;
  settle({status == JobStatus::kFailed ? queue::Settlement::kDeadLetter : queue::Settlement::kDone,
          0, error});
  context_.metrics.increment(metric::kJobsFinished, {{"status", name}});
  context_.metrics.observe(metric::kJobDuration, {{"status", name}}, seconds_since(job_.created_ms));
  if (context_.on_event) context_.on_event(job_.id);
}

}  // namespace df::worker
