// Model download jobs: the claim loop, the installer run, and its report as job events.
#include "download/model_download_jobs.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/ids.h"
#include "core/json_schema.h"
#include "download/configured_sources.h"
#include "download/download_progress.h"
#include "download/model_installer.h"
#include "download/model_ref.h"
#include "telemetry/service_metrics.h"

namespace df::download {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kProgressInterval = std::chrono::milliseconds(500);

}  // namespace

json model_download_request_schema() {
  const auto folder = [](const char* description) {
    return json{{"type", "string"}, {"minLength", 1}, {"maxLength", 128},
                {"pattern", "^[A-Za-z0-9_][A-Za-z0-9._-]*$"}, {"description", description}};
  };
  return {{"type", "object"},
          {"additionalProperties", false},
          {"required", {"ref"}},
          {"properties",
           {{"ref", {{"type", "string"}, {"minLength", 4}, {"maxLength", 1024},
                     {"pattern", "^(hf|civitai):\\S+$"},
                     {"description", "hf:org/repo[@revision][#file] or civitai:model[@version]"}}},
            {"kind", folder("Folder under the models root (default: the source's)")},
            {"name", folder("Name part of the model's folder (default: the source's)")},
            {"version", folder("Version part of the model's folder (default: the source's)")},
            {"verify_only", {{"type", "boolean"}, {"default", false},
                             {"description", "Only re-hash the installed files against their recorded hashes"}}},
            {"overwrite", {{"type", "boolean"}, {"default", false},
                           {"description", "Fetch it again although it is installed"}}}}}};
}

namespace {

[[noreturn]] void reject(const std::string& field, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, field + " " + message,
              {{"fields", {{{"field", field}, {"message", message}}}}});
}

// What an install reports, as the job's events: its start, each file, retries, and (at most
// every 500 ms) progress with the bytes so far; keeps the job's lease while bytes arrive.
class JobDownloadReport : public DownloadObserver {
 public:
  JobDownloadReport(store::Store& store, const Lease& lease, int64_t lease_ms,
                    telemetry::Metrics& metrics, std::function<void()> news)
      : store_(store), lease_(lease), lease_ms_(lease_ms), metrics_(metrics), news_(std::move(news)) {}

  void begin(const std::string& model_id, int files, int64_t total_bytes) override {
    std::lock_guard lock(mutex_);
    total_ = total_bytes;
    log("download.start", "fetching " + std::to_string(files) + " file(s), " +
                              human_bytes(total_bytes) + ", of " + model_id,
        {{"model_id", model_id}, {"files", files}, {"bytes_total", total_bytes}});
  }
  void file_started(const std::string& path, int64_t size, int64_t resumed_from) override {
    std::lock_guard lock(mutex_);
    bytes_[path] = resumed_from;
    log("download.file", "fetching " + path + " (" + human_bytes(size) + ")" +
                             (resumed_from > 0 ? ", resuming at " + human_bytes(resumed_from) : ""),
        {{"path", path}, {"size", size}, {"resumed_from", resumed_from}});
  }
  void file_progress(const std::string& path, int64_t bytes) override {
    std::lock_guard lock(mutex_);
    const int64_t before = bytes_[path];
    bytes_[path] = bytes;
    if (bytes > before) metrics_.increment(telemetry::kModelDownloadBytes, {}, static_cast<double>(bytes - before));
    if (last_report_ && Clock::now() - *last_report_ < kProgressInterval) return;
    last_report_ = Clock::now();
    report_progress();
  }
  void file_retrying(const std::string& path, const std::string& why, double delay_s) override {
    std::lock_guard lock(mutex_);
    log("download.retry", path + ": " + token_redactor()(why) + "; again in " +
                              std::to_string(static_cast<int>(delay_s + 0.5)) + " s",
        {{"path", path}}, "warning");
  }
  void file_finished(const std::string& path, int64_t size, bool transferred) override {
    std::lock_guard lock(mutex_);
    bytes_[path] = size;
    log("download.file_done", path + (transferred ? " verified" : " was already there"),
        {{"path", path}, {"size", size}, {"transferred", transferred}});
  }
  void finish() override {
    std::lock_guard lock(mutex_);
    report_progress();
  }
  bool canceled() const override { return cancel_requested_; }

 private:
  int64_t done() const {
    int64_t sum = 0;
    for (const auto& [path, bytes] : bytes_) sum += bytes;
    return sum;
  }
  // Progress of the job's one item and an event with the bytes; renews the lease.
  void report_progress() {
    const int64_t bytes = done();
    const double progress = total_ > 0 ? std::min(1.0, static_cast<double>(bytes) / static_cast<double>(total_)) : 0;
    JobItem item;
    item.status = "running";
    item.progress = progress;
    store_.save_items(lease_, {item}, progress);
    store_.renew_lease(lease_, lease_ms_);
    const auto job = store_.get_job(lease_.job_id);  // POST /v1/jobs/{id}/cancel sets this
    cancel_requested_ = job && job->cancel_requested;
    Event event = new_event("progress");
    event.item_index = 0;
    event.message = human_bytes(bytes) + " of " + human_bytes(total_);
    event.data = {{"progress", progress}, {"bytes_done", bytes}, {"bytes_total", total_}};
    append(event);
  }
  void log(const std::string& code, const std::string& message, json data,
           const std::string& level = "info") {
    Event event = new_event("log");
    event.code = code;
    event.message = message;
    event.plain = message;
    event.data = std::move(data);
    event.data["level"] = level;
    append(event);
  }
  Event new_event(const std::string& type) const {
    Event event;
    event.job_id = lease_.job_id;
    event.type = type;
    event.created_ms = now_ms();
    return event;
  }
  void append(const Event& event) {
    store_.append_event(event, &lease_);
    news_();
  }

  store::Store& store_;
  const Lease lease_;
  const int64_t lease_ms_;
  telemetry::Metrics& metrics_;
  std::function<void()> news_;
  std::mutex mutex_;
  std::map<std::string, int64_t> bytes_;
  int64_t total_ = 0;
  std::optional<Clock::time_point> last_report_;  // none: nothing reported yet
  std::atomic<bool> cancel_requested_{false};
};

InstallOptions install_options(const json& spec) {
  InstallOptions options;
  options.kind = spec.value("kind", "");
  options.name = spec.value("name", "");
  options.version = spec.value("version", "");
  options.overwrite = spec.value("overwrite", false);
  return options;
}

Event finished_event(const Job& job, const std::string& status, const std::string& message,
                     json data) {
  Event event;
  event.job_id = job.id;
  event.type = "job_finished";
  event.message = message;
  event.plain = message;
  event.data = std::move(data);
  event.data["status"] = status;
  event.data["progress"] = status == "succeeded" ? 1.0 : job.progress;
  event.created_ms = now_ms();
  return event;
}

}  // namespace

json model_download_spec(const json& body) {
  const json schema = model_download_request_schema();
  const auto violations = validate_against_schema(schema, body);
  if (!violations.empty()) reject(violations.front().field, violations.front().message);
  json spec = apply_schema_defaults(schema, body);
  try {
    spec["ref"] = format_model_ref(parse_model_ref(body["ref"].get<std::string>()));
  } catch (const Error& e) {
    reject("ref", e.what());
  }
  for (const char* field : {"kind", "name", "version"}) {
    if (spec.contains(field) && folder_name_part(spec[field]) != spec[field].get<std::string>()) {
      reject(field, "must be a folder name: letters, digits, '.', '-' and '_'");
    }
  }
  return spec;
}

ModelDownloadJobs::ModelDownloadJobs(store::Store& store, registry::ModelRegistry& registry,
                                     ModelLayout layout, telemetry::Metrics& metrics,
                                     ModelDownloadSettings settings,
                                     std::function<void(const std::string&)> news)
    : store_(store),
      registry_(registry),
      layout_(std::move(layout)),
      metrics_(metrics),
      settings_(std::move(settings)),
      news_(std::move(news)) {
  for (int i = 0; i < std::max(1, settings_.concurrency); ++i) {
    threads_.emplace_back([this](const std::stop_token& stop) { loop(stop); });
  }
}

ModelDownloadJobs::~ModelDownloadJobs() {
  for (auto& thread : threads_) thread.request_stop();
  wake_.notify_all();
  threads_.clear();
}

void ModelDownloadJobs::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_one();
}

void ModelDownloadJobs::loop(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    std::optional<Job> job;
    try {
      job = store_.claim_model_download(settings_.worker_id, settings_.lease_ms);
    } catch (const std::exception&) {
      job.reset();  // the database did not answer: look again at the next poll
    }
    if (job) {
      run(*job);
      continue;
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, stop, std::chrono::milliseconds(settings_.poll_ms), [this] { return woken_; });
    woken_ = false;
  }
}

void ModelDownloadJobs::run(const Job& job) {
  const Lease lease{job.id, job.worker_id, job.attempts};
  const auto news = [this, id = job.id] { news_(id); };
  JobDownloadReport report(store_, lease, settings_.lease_ms, metrics_, news);
  const auto finish = [&](JobStatus status, const json& error, const Event& event,
                          const std::string& outcome) {
    store_.finish_job(lease, status, error, event);
    metrics_.increment(telemetry::kModelDownloads, {{"outcome", outcome}});
    news();
  };
  try {
    if (job.attempts > job.max_attempts) {
      throw Error(ErrorCode::kInternal, "gave up after " + std::to_string(job.max_attempts) +
                                            " attempts that did not finish (the service stopped)");
    }
    Event started;
    started.job_id = job.id;
    started.type = "job_started";
    started.message = "attempt " + std::to_string(job.attempts) + " on " + lease.worker_id;
    started.plain = "The download has started.";
    started.created_ms = now_ms();
    store_.append_event(started, &lease);
    news();
    const json& spec = job.spec;
    const ModelRef ref = parse_model_ref(spec.at("ref").get<std::string>());
    ModelInstaller installer(layout_, registry_, report, settings_.file_jobs);
    const auto source = configured_source(ref);
    if (spec.value("verify_only", false)) {
      const Model model = installer.verify(*source, ref, install_options(spec));
      finish(JobStatus::kSucceeded, nullptr,
             finished_event(job, "succeeded", "verified " + model.id + ": every file matches",
                            {{"model_id", model.id}, {"verified", true}}),
             "verified");
      return;
    }
    const InstallResult result = installer.install(*source, ref, install_options(spec));
    finish(JobStatus::kSucceeded, nullptr,
           finished_event(job, "succeeded",
                          (result.already_installed ? "already installed: " : "installed: ") + result.model.id,
                          {{"model_id", result.model.id}, {"already_installed", result.already_installed}}),
           result.already_installed ? "already_installed" : "installed");
  } catch (const Error& raw) {
    const Error e = without_tokens(raw);
    if (e.code() == ErrorCode::kCanceled) {
      Event event = finished_event(job, "canceled", "the download was canceled", {});
      event.code = "canceled";
      finish(JobStatus::kCanceled, {{"code", "canceled"}, {"message", "canceled while downloading"},
                                    {"details", json::object()}},
             event, "canceled");
      return;
    }
    const json error = {{"code", e.code_name()}, {"message", e.what()}, {"details", e.details()}};
    Event event = finished_event(job, "failed", e.what(), {});
    event.code = std::string(e.code_name());
    finish(JobStatus::kFailed, error, event, "failed");
  } catch (const std::exception& raw) {
    const std::string message = token_redactor()(raw.what());
    Event event = finished_event(job, "failed", message, {});
    event.code = "internal";
    finish(JobStatus::kFailed, {{"code", "internal"}, {"message", message}, {"details", json::object()}},
           event, "failed");
  }
}

}  // namespace df::download
