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
#include "core/numbers.h"
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
  if (code == "model_not_found") return "The model this job needs is not installed.";
  if (code == "validation") return "The job's settings were not accepted.";
  if (code == "canceled") return "The job was canceled.";
  return "Something went wrong while making your image.";
}

// A runner's stage, cached or log event as one readable log line.
std::string runner_log_line(const json& event) {
  const std::string type = event.value("type", "");
  if (type == "stage") {
    return event.value("stage", "stage") + ": " + event.value("class_type", "") + " (node " +
           event.value("node", "?") + ")";
  }
  if (type == "cached") return "reused cached outputs of nodes " + event.value("nodes", json::array()).dump();
  return event.value("message", "");
}

// A streamed_image event of the runner: the PNG goes to the live-image sink (when there is one)
// under a fresh frame id, and `out` becomes the job's record of it, the frame id included, without
// the pixels.
void relay_streamed_image(const json& event, const Job& job, const WorkerContext& context, Event& out) {
  const std::string node = event.value("node", "");
  const int index = event.value("index", 0);
  const int count = event.value("count", 1);
  out.type = "streamed_image";
  out.message = "image " + std::to_string(index + 1) + "/" + std::to_string(count) + " of node " +
                node + " streamed to the client";
  out.data = {{"node", node},
              {"index", index},
              {"count", count},
              {"width", event.value("width", 0)},
              {"height", event.value("height", 0)}};
  auto png = decode_base64(event.value("data", ""));
  if (!png) return;
  out.data["bytes"] = png->size();
  if (!context.on_live_image) return;
  const std::string frame_id = new_uuid_v7();
  out.data["frame"] = frame_id;
  context.on_live_image(job, {node, "image/png", std::move(*png), frame_id});
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

double seconds_since(int64_t epoch_ms) { return static_cast<double>(now_ms() - epoch_ms) / 1000.0; }

}  // namespace

JobRun::JobRun(queue::Delivery delivery, WorkerContext& context)
    : delivery_(std::move(delivery)),
      job_(delivery_.job),
      lease_{job_.id, context.settings.worker_id, job_.attempts},
      context_(context) {}

void JobRun::execute() {
  if (job_.attempts == 1) {
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
  started.plain = job_.attempts == 1 ? "Your job has started." : "Your job is being retried.";
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
  runner_pid_ = runner->pid();
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

  json items = json::array();
  for (const auto* item : pending_items()) items.push_back({{"index", item->index}, {"seed", item->seed}});
  const std::string run_id = job_.id + "/" + std::to_string(job_.attempts);
  Outcome outcome;
  try {
    json run = {{"type", "run"},
                {"id", run_id},
                {"graph", graph},
                {"items", items},
                {"output_dir", context_.settings.output_dir},
                {"temp_dir", context_.settings.temp_dir},
                {"format", job_output_format(job_)}};
    const json extra_pnginfo = job_extra_pnginfo(job_);
    if (!extra_pnginfo.is_null()) run["extra_pnginfo"] = extra_pnginfo;
    if (job_wants_previews(job_) && context_.on_live_image) run["previews"] = true;
    runner->send(run);
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

JobRun::Outcome JobRun::follow(runner::RunnerProcess& runner, const std::string& run_id) {
  const auto started = Clock::now();
  const auto timeout = std::chrono::milliseconds(context_.settings.step_timeout_ms);
  last_heartbeat_ = last_cancel_check_ = started;
  bool cancel_sent = false;
  while (true) {
    std::optional<json> event;
    try {
      event = runner.next_event(200);
    } catch (const Error& e) {
      const std::string ended = stop_runner();
      return {"failed", error_json("runner_crashed",
                                   std::string("the runner broke the protocol and was stopped: ") +
                                       e.what() + " (it " + ended + ")",
                                   {{"reason", "protocol"}})};
    }
    sample_memory(runner.pid());
    if (event) {
      try {
        handle(*event);
      } catch (const Error& e) {
        // The database or the storage could not take the run's results: the run stops, and the
        // error is theirs, not the runner's.
        const std::string ended = stop_runner();
        return {"failed", error_json(std::string(e.code_name()),
                                     std::string("could not record the run's results: ") +
                                         e.what() + " (the runner was stopped: it " + ended + ")",
                                     e.details())};
      }
      if (event->value("type", "") == "run_finished") {
        const std::string status = event->value("status", "failed");
        if (status == "succeeded") return {"succeeded", nullptr};
        if (status == "canceled") return {"canceled", error_json("canceled", "canceled while running")};
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
        runner.send({{"type", "cancel"}, {"id", run_id}});
        cancel_sent = true;
      }
    }
  }
}

void JobRun::handle(const json& event) {
  const std::string type = event.value("type", "");
  const int index = event.value("item_index", -1);
  auto item = std::find_if(items_.begin(), items_.end(), [&](const JobItem& i) { return i.index == index; });
  Event out;
  if (index >= 0) out.item_index = index;
  if (type == "item_started" && item != items_.end()) {
    item->status = "running";
    item_started_[index] = Clock::now();
    save_items();
    out.type = "item_started";
    out.message = "item " + std::to_string(index) + " started with seed " + std::to_string(item->seed);
    out.plain = "Image " + std::to_string(index + 1) + " of " + std::to_string(items_.size()) + " has started.";
    out.data = {{"seed", item->seed}};
  } else if (type == "progress" && item != items_.end()) {
    item->step = event.value("step", 0);
    item->total_steps = event.value("total", 0);
    item->progress = event.value("progress", 0.0);
    save_items();
    out.type = "progress";
    out.message = "step " + std::to_string(item->step) + "/" + std::to_string(item->total_steps);
    out.data = {{"step", item->step},
                {"total_steps", item->total_steps},
                {"item_progress", item->progress},
                {"node", event.value("node", "")}};
    if (const auto left = estimated_seconds_left(job_)) out.data["eta_seconds_left"] = *left;
  } else if (type == "item_finished" && item != items_.end()) {
    item->status = "succeeded";
    item->progress = 1;
    item->step = item->total_steps;
    save_items();
    context_.metrics.increment(metric::kBatchItems, {{"status", "succeeded"}});
    if (item_started_.count(index)) {
      context_.metrics.observe(metric::kItemDuration, {},
                               std::chrono::duration<double>(Clock::now() - item_started_[index]).count());
    }
    out.type = "item_finished";
    out.message = "item " + std::to_string(index) + " finished";
    out.plain = "Image " + std::to_string(index + 1) + " of " + std::to_string(items_.size()) + " is ready.";
    out.data = {{"seed", item->seed}, {"duration_ms", event.value("duration_ms", 0)}};
  } else if (type == "preview") {
    auto jpeg = decode_base64(event.value("data", ""));
    if (jpeg && context_.on_live_image) {
      context_.on_live_image(job_, {event.value("node", ""), "image/jpeg", std::move(*jpeg), ""});
    }
    return;
  } else if (type == "streamed_image") {
    relay_streamed_image(event, job_, context_, out);  // handed over before its event is stored
  } else if (type == "artifact" && event.value("kind", "") == "output") {
    store_artifact(event);
    return;
  } else if (type == "artifact") {
    out.type = "temp_image";  // a preview: shown where it lies, not kept as an artifact
    out.message = "preview " + event.value("filename", "");
    out.data = {{"node", event.value("node", "")}, {"filename", event.value("filename", "")},
                {"subfolder", event.value("subfolder", "")}, {"kind", "temp"}};
  } else if (type == "executing") {
    out.type = "node_started";
    out.message = event.value("class_type", "") + " (node " + event.value("node", "") + ")";
    out.data = {{"node", event.value("node", "")}, {"class_type", event.value("class_type", "")}};
  } else if (type == "cached") {
    out.type = "nodes_cached";
    out.message = runner_log_line(event);
    out.data = {{"nodes", event.value("nodes", json::array())}};
  } else if (type == "error") {
    runner_error_ = error_json(event.value("code", "internal"), event.value("message", ""),
                               event.value("details", json::object()));
    if (item != items_.end() && runner_error_["code"] != "canceled") item->status = "failed";
    out.type = "error";
    out.code = runner_error_["code"];
    out.message = runner_error_["message"];
    out.plain = plain_error(out.code);
    out.data = {{"details", runner_error_["details"]}};
  } else if (type == "stage" || type == "log") {
    out.type = "log";
    out.message = runner_log_line(event);
    out.data = {{"source", "runner"}, {"level", event.value("level", "info")}};
    if (type == "stage") {
      out.data["stage"] = event.value("stage", "");
      out.data["node"] = event.value("node", "");
      out.data["class_type"] = event.value("class_type", "");
    }
  } else {
    // run_started and run_finished carry the runner's own memory report (the step's event sums it
    // up); the rest is summed up by the job's own events.
    if (type == "run_started") memory_at_start_ = read_runner_memory(event, step_.memory_kind);
    if (type == "run_finished") memory_at_end_ = read_runner_memory(event, step_.memory_kind);
    return;
  }
  emit(out);
}

void JobRun::store_artifact(const json& event) {
  const int index = event.value("item_index", 0);
  const std::string node = event.value("node", "0");
  const int ordinal = outputs_[{index, node}]++;
  const uint64_t seed = event.value("seed", uint64_t{0});
  const int width = event.value("width", 0);
  const int height = event.value("height", 0);
  const std::string path = event.value("path", "");
  const std::string extension = fs::path(path).extension().string();
  const std::string item_part = std::to_string(index) + (ordinal ? "-" + std::to_string(ordinal) : "");
  Artifact artifact;
  artifact.job_id = job_.id;
  artifact.item_index = index;
  artifact.key = "dreamforge/" + context_.settings.user + "/jobs/" + job_.id + "/" + node + "/" +
                 compact_timestamp(job_.created_ms) + "_" + item_part + "_" + std::to_string(width) +
                 "x" + std::to_string(height) + "_" + std::to_string(seed) + extension;
  artifact.content_type = event.value("content_type", "application/octet-stream");
  artifact.size = event.value("bytes", int64_t{0});
  artifact.sha256 = event.value("sha256", "");
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
  artifact.metadata["filename"] = event.value("filename", "");
  artifact.metadata["subfolder"] = event.value("subfolder", "");
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
              {"filename", event.value("filename", "")},
              {"subfolder", event.value("subfolder", "")},
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
