// Handling of generate, cancel, list_models, status and ping.
#include "pixels/server/pixels_requests.h"

#include <filesystem>
#include <type_traits>
#include <variant>

#include "api/comfy_prompts.h"
#include "core/error.h"
#include "nodes/model_folders.h"
#include "pixels/server/pixels_job.h"

namespace df::pixels {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

// Bytes of a file, or of every file below a folder (a diffusers model).
int64_t disk_size_bytes(const fs::path& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) {
    const auto size = fs::file_size(path, error);
    return error ? 0 : static_cast<int64_t>(size);
  }
  int64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(path, error)) {
    if (entry.is_regular_file(error)) total += static_cast<int64_t>(entry.file_size(error));
  }
  return total;
}

int64_t whole_megabytes(int64_t bytes) { return bytes / (1024 * 1024); }

// The files of a ComfyUI model folder kind ("loras", "vae") as model_list entries.
void add_folder_models(const std::string& models_root, const char* kind, const char* model_type,
                       std::vector<ModelEntry>& entries) {
  for (const auto& name : nodes::list_model_files(models_root, kind)) {
    const std::string path = nodes::resolve_model_file(models_root, kind, name);
    entries.push_back({name, path, model_type, whole_megabytes(disk_size_bytes(path))});
  }
}

// The job id a generate or cancel message names, when it names one as a string.
std::optional<std::string> named_job_id(const json& message) {
  const std::string type = message_type(message);
  const char* key = type == "generate" ? "id" : type == "cancel" ? "job_id" : nullptr;
  if (key == nullptr || !message.contains(key) || !message[key].is_string()) return std::nullopt;
  return message[key].get<std::string>();
}

}  // namespace

double rough_estimate_s(const GenerateRequest& request) {
  int images = request.batch_size;
  if (request.animation_frames) images = *request.animation_frames;
  if (request.tileset_grid) images = request.tileset_grid->first * request.tileset_grid->second;
  const double megapixels = static_cast<double>(request.width) * request.height / 1e6;
  return 0.1 * request.steps * megapixels * images;
}

PixelsRequests::PixelsRequests(api::ApiService& api, store::Store& store,
                               registry::ModelRegistry& models, std::string models_root,
                               std::string version)
    : api_(api),
      store_(store),
      models_(models),
      models_root_(std::move(models_root)),
      version_(std::move(version)) {}

ordered_json PixelsRequests::handle(const json& message) {
  Request request;
  try {
    request = parse_request(message);
  } catch (const Error& e) {
    const auto job_id = message.is_object() ? named_job_id(message) : std::nullopt;
    if (!job_id) throw;
    return job_error(*job_id, e.what());
  }
  return std::visit(
      [this](const auto& parsed) -> ordered_json {
        using T = std::decay_t<decltype(parsed)>;
        if constexpr (std::is_same_v<T, GenerateRequest>) return generate(parsed);
        if constexpr (std::is_same_v<T, CancelRequest>) return cancel(parsed);
        if constexpr (std::is_same_v<T, ListModelsRequest>) return list_models();
        if constexpr (std::is_same_v<T, StatusRequest>) return status();
        if constexpr (std::is_same_v<T, PingRequest>) return pong();
      },
      request);
}

ordered_json PixelsRequests::generate(const GenerateRequest& request) {
  if (!api::valid_prompt_id(request.id)) {
    return job_error(request.id, "generate: id must be 1-128 characters of A-Z a-z 0-9 . _ : -");
  }
  try {
    const Model model = resolve_model(request.model, models_.available());
    const auto created = api_.submit_job(job_request_body(request, model), "dgx-pixels:" + request.id,
                                         http::Caller{}, [&request](Job& job) {
                                           job.id = request.id;
                                           job.spec["previews"] = true;
                                         });
    const json& spec = created.job.spec;
    const bool estimated = spec.contains("estimate") && spec["estimate"].contains("seconds");
    return job_accepted(request.id, estimated ? spec["estimate"]["seconds"].get<double>()
                                              : rough_estimate_s(request));
  } catch (const std::exception& e) {
    return job_error(request.id, e.what());
  }
}

ordered_json PixelsRequests::cancel(const CancelRequest& request) {
  try {
    const auto outcome = api_.cancel(request.job_id);
    if (!outcome) return job_error(request.job_id, "no job with id '" + request.job_id + "'");
    if (*outcome == store::CancelOutcome::kAlreadyFinished) {
      return job_error(request.job_id, "job '" + request.job_id + "' has already finished");
    }
    return job_cancelled(request.job_id);
  } catch (const std::exception& e) {
    return job_error(request.job_id, e.what());
  }
}

ordered_json PixelsRequests::list_models() {
  std::vector<ModelEntry> entries;
  for (const auto& model : models_.available()) {
    entries.push_back({model.id, model.local_path, "checkpoint",
                       whole_megabytes(disk_size_bytes(model.local_path))});
  }
  add_folder_models(models_root_, "loras", "lora", entries);
  add_folder_models(models_root_, "vae", "vae", entries);
  return model_list(entries);
}

ordered_json PixelsRequests::status() {
  StatusInfo info;
  info.version = version_;
  info.queue_size = store_.count_jobs(JobStatus::kQueued);
  info.active_jobs = store_.count_jobs(JobStatus::kRunning);
  info.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::steady_clock::now() - started_)
                      .count();
  return status_info(info);
}

}  // namespace df::pixels
