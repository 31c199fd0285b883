// The terminal client's state, fed by DGX-Pixels updates and replies.
#include "tui/client_state.h"

#include <algorithm>
#include <cmath>
#include <regex>

#include "core/error.h"

namespace df::tui {

using nlohmann::json;

namespace {

JobView unseen_job(const std::string& id) {
  JobView job;
  job.id = id;
  return job;
}

}  // namespace

const char* job_status_name(JobStatus status) {
  switch (status) {
    case JobStatus::kQueued: return "queued";
    case JobStatus::kRunning: return "running";
    case JobStatus::kDone: return "done";
    case JobStatus::kFailed: return "failed";
    case JobStatus::kCanceled: return "canceled";
  }
  return "unknown";
}

const char* connection_name(Connection connection) {
  switch (connection) {
    case Connection::kConnecting: return "connecting";
    case Connection::kConnected: return "connected";
    case Connection::kReconnecting: return "reconnecting";
  }
  return "unknown";
}

bool JobView::finished() const {
  return status == JobStatus::kDone || status == JobStatus::kFailed ||
         status == JobStatus::kCanceled;
}

int JobView::current_item() const {
  const int items = std::max(count, 1);
  const int done = static_cast<int>(std::floor(percent / 100.0 * items + 1e-9));
  return std::clamp(done + 1, 1, items);
}

double JobView::item_percent() const {
  const int items = std::max(count, 1);
  const double item_progress = percent / 100.0 * items - (current_item() - 1);
  return std::clamp(item_progress * 100.0, 0.0, 100.0);
}

std::optional<std::pair<int, int>> size_from_image_name(const std::string& path_or_url) {
  static const std::regex size_pattern(R"(_(\d{1,5})x(\d{1,5})_\d+\.[A-Za-z0-9]+$)");
  const std::string path = path_or_url.substr(0, path_or_url.find('?'));
  std::smatch match;
  if (!std::regex_search(path, match, size_pattern)) return std::nullopt;
  return std::pair{std::stoi(match[1].str()), std::stoi(match[2].str())};
}

const JobView* ClientState::job(const std::string& id) const {
  const auto found = std::find_if(jobs_.begin(), jobs_.end(),
                                  [&](const JobView& job) { return job.id == id; });
  return found == jobs_.end() ? nullptr : &*found;
}

std::string ClientState::job_for_request(const std::string& request_id) const {
  const auto found = request_jobs_.find(request_id);
  return found == request_jobs_.end() ? "" : found->second;
}

std::vector<std::string> ClientState::checkpoint_names() const {
  std::vector<std::string> names;
  for (const auto& model : models_) {
    if (model.model_type == "checkpoint") names.push_back(model.name);
  }
  return names;
}

JobView& ClientState::job_entry(const std::string& id) {
  const auto found = std::find_if(jobs_.begin(), jobs_.end(),
                                  [&](const JobView& job) { return job.id == id; });
  if (found != jobs_.end()) return *found;
  jobs_.push_back(unseen_job(id));
  return jobs_.back();
}

void ClientState::on_update(const json& update) {
  try {
    const std::string type = pixels::message_type(update);
    if (type.empty()) throw Error(ErrorCode::kInvalidArgument, "an update without a type");
    on_job_update(type, update);
  } catch (const Error& e) {
    last_error_ = std::string("bad update: ") + e.what();
  }
}

void ClientState::on_job_update(const std::string& type, const json& update) {
  if (type != "job_started" && type != "progress" && type != "preview" &&
      type != "job_finished" && type != "job_complete" && type != "job_error") {
    throw Error(ErrorCode::kInvalidArgument, "unknown update type '" + type + "'");
  }
  const std::string id = pixels::string_field(update, "job_id");
  const JobView* known = this->job(id);
  JobView job = known != nullptr ? *known : unseen_job(id);
  if (type == "job_started") {
    job.status = JobStatus::kRunning;
    job.stage.clear();
    job.percent = 0;
    job.step = 0;
    job.eta_s.reset();
    job.duration_s.reset();
    job.error.clear();
  } else if (type == "progress") {
    if (job.finished()) return;
    job.status = JobStatus::kRunning;
    job.stage = pixels::string_field(update, "stage");
    job.step = static_cast<int>(pixels::integer_field(update, "step"));
    job.total_steps = static_cast<int>(pixels::integer_field(update, "total_steps"));
    job.percent = std::clamp(pixels::number_field(update, "percent"), 0.0, 100.0);
    job.eta_s = pixels::number_field(update, "eta_s");
  } else if (type == "preview") {
    if (job.finished()) return;
    job.preview_path = pixels::string_field(update, "image_path");
    job.preview_step = static_cast<int>(pixels::integer_field(update, "step"));
  } else if (type == "job_finished") {
    const bool success = pixels::bool_field(update, "success");
    job.duration_s = pixels::number_field(update, "duration_s");
    job.eta_s.reset();
    if (job.status != JobStatus::kCanceled) {
      job.status = success ? JobStatus::kDone : JobStatus::kFailed;
    }
    if (success) job.percent = 100;
  } else if (type == "job_complete") {
    job.status = JobStatus::kDone;
    job.percent = 100;
    job.eta_s.reset();
    job.duration_s = pixels::number_field(update, "duration_s");
    job.image_paths.clear();
    if (update.contains("image_paths") && update["image_paths"].is_array()) {
      for (const auto& path : update["image_paths"]) {
        if (path.is_string()) job.image_paths.push_back(path.get<std::string>());
      }
    }
    if (job.image_paths.empty()) {
      job.image_paths.push_back(pixels::string_field(update, "image_path"));
    }
    if (job.count == 0) job.count = static_cast<int>(job.image_paths.size());
    job.preview_path.clear();
  } else {  // job_error
    job.error = pixels::string_field(update, "error");
    job.eta_s.reset();
    std::string lowered = job.error;
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const bool canceled = job.status == JobStatus::kCanceled ||
                          lowered.find("cancel") != std::string::npos;
    job.status = canceled ? JobStatus::kCanceled : JobStatus::kFailed;
    job.preview_path.clear();
  }
  job_entry(id) = job;
  if (type == "job_complete") add_to_gallery(job);
}

void ClientState::add_to_gallery(const JobView& job) {
  std::erase_if(gallery_, [&](const GalleryEntry& entry) { return entry.job_id == job.id; });
  for (const auto& path : job.image_paths) {
    GalleryEntry entry{.job_id = job.id, .image_path = path, .width = job.width,
                       .height = job.height, .model = job.model, .duration_s = job.duration_s};
    if (const auto size = size_from_image_name(path)) {
      entry.width = size->first;
      entry.height = size->second;
    }
    gallery_.push_back(entry);
  }
}

void ClientState::on_reply(const pixels::Request& request, const json& reply) {
  connection_ = Connection::kConnected;
  try {
    const std::string type = pixels::message_type(reply);
    if (type == "error") {
      last_error_ = "server: " + pixels::string_field(reply, "message");
    } else if (type == "job_accepted") {
      if (const auto* generate = std::get_if<pixels::GenerateRequest>(&request)) {
        on_accepted(*generate, reply);
      }
    } else if (type == "job_cancelled") {
      JobView& job = job_entry(pixels::string_field(reply, "job_id"));
      if (!job.finished()) job.status = JobStatus::kCanceled;
    } else if (type == "job_error") {
      last_error_ = "job " + pixels::string_field(reply, "job_id").substr(0, 8) + ": " +
                    pixels::string_field(reply, "error");
    } else if (type == "model_list") {
      std::vector<pixels::ModelEntry> models;
      for (const auto& model : reply.at("models")) {
        models.push_back({pixels::string_field(model, "name"), pixels::string_field(model, "path"),
                          pixels::string_field(model, "model_type"),
                          pixels::integer_field(model, "size_mb")});
      }
      models_ = std::move(models);
    } else if (type == "status_info") {
      status_ = pixels::StatusInfo{pixels::string_field(reply, "version"),
                                   pixels::integer_field(reply, "queue_size"),
                                   pixels::integer_field(reply, "active_jobs"),
                                   pixels::integer_field(reply, "uptime_s")};
    } else if (type != "pong") {
      last_error_ = "unexpected reply '" + type + "'";
    }
  } catch (const std::exception& e) {
    last_error_ = std::string("bad reply: ") + e.what();
  }
}

void ClientState::on_accepted(const pixels::GenerateRequest& request, const json& reply) {
  const std::string job_id = pixels::string_field(reply, "job_id");
  request_jobs_[request.id] = job_id;
  JobView& job = job_entry(job_id);
  job.model = request.model;
  job.prompt = request.prompt;
  job.width = request.width;
  job.height = request.height;
  job.count = request.batch_size;
  if (!job.finished() && job.status != JobStatus::kRunning) {
    job.eta_s = pixels::number_field(reply, "estimated_time_s");
  }
  for (auto& entry : gallery_) {
    if (entry.job_id == job_id && entry.model.empty()) entry.model = request.model;
  }
}

void ClientState::on_request_failed(const pixels::Request& request, bool unavailable,
                                    const std::string& message) {
  if (unavailable) connection_ = Connection::kReconnecting;
  const bool background = std::holds_alternative<pixels::StatusRequest>(request) ||
                          std::holds_alternative<pixels::PingRequest>(request) ||
                          std::holds_alternative<pixels::ListModelsRequest>(request);
  if (unavailable && background) return;
  last_error_ = message;
}

}  // namespace df::tui
