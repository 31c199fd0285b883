// What the terminal client knows: jobs, their stages and items, finished images, models, server.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pixels/pixels_messages.h"

namespace df::tui {

enum class JobStatus { kQueued, kRunning, kDone, kFailed, kCanceled };
const char* job_status_name(JobStatus status);  // "queued", "running", "done", "failed", "canceled"

struct JobView {
  std::string id;
  // From this client's generate request; empty (count 0) for jobs other clients submitted.
  std::string model;
  std::string prompt;
  int width = 0;
  int height = 0;
  int count = 0;  // images in the batch, 0 while unknown
  JobStatus status = JobStatus::kQueued;
  std::string stage;
  int step = 0;
  int total_steps = 0;
  double percent = 0;  // of the whole job, 0..100
  std::optional<double> eta_s;
  std::optional<double> duration_s;
  std::string error;
  std::string preview_path;  // the latest latent preview, while the job runs
  int preview_step = 0;
  std::vector<std::string> image_paths;

  bool finished() const;
  // The item being worked on, 1-based, and its own percent; from the job's percent and count (a
  // job of unknown size counts as one item).
  int current_item() const;
  double item_percent() const;
};

struct GalleryEntry {
  std::string job_id;
  std::string image_path;  // a local path or an http URL
  int width = 0;           // 0 when unknown
  int height = 0;
  std::string model;
  std::optional<double> duration_s;
};

// The pixel size an artifact's file name tells ("..._{w}x{h}_{seed}.png", a URL's query ignored).
std::optional<std::pair<int, int>> size_from_image_name(const std::string& path_or_url);

enum class Connection { kConnecting, kConnected, kReconnecting };
const char* connection_name(Connection connection);  // "connecting", "connected", "reconnecting"

// Consumes the server's updates and replies; pure (no terminal, no sockets).
class ClientState {
 public:
  // An update from the PUB side (job_started, progress, preview, job_finished, job_complete,
  // job_error). One that cannot be read sets last_error and changes nothing else.
  void on_update(const nlohmann::json& update);
  // The reply to `request`. Any reply means the server is there.
  void on_reply(const pixels::Request& request, const nlohmann::json& reply);
  // `request` failed: `unavailable` when the server did not answer (the link retries), else the
  // server or the link refused it.
  void on_request_failed(const pixels::Request& request, bool unavailable,
                         const std::string& message);

  // Jobs in the order they were first seen.
  const std::vector<JobView>& jobs() const { return jobs_; }
  const JobView* job(const std::string& id) const;
  // The job a generate request of this client became ("" while it is not accepted).
  std::string job_for_request(const std::string& request_id) const;
  const std::vector<GalleryEntry>& gallery() const { return gallery_; }
  const std::vector<pixels::ModelEntry>& models() const { return models_; }
  std::vector<std::string> checkpoint_names() const;
  const std::optional<pixels::StatusInfo>& status() const { return status_; }
  Connection connection() const { return connection_; }
  const std::string& last_error() const { return last_error_; }

 private:
  JobView& job_entry(const std::string& id);
  void on_job_update(const std::string& type, const nlohmann::json& update);
  void on_accepted(const pixels::GenerateRequest& request, const nlohmann::json& reply);
  void add_to_gallery(const JobView& job);

  std::vector<JobView> jobs_;
  std::map<std::string, std::string> request_jobs_;
  std::vector<GalleryEntry> gallery_;
  std::vector<pixels::ModelEntry> models_;
  std::optional<pixels::StatusInfo> status_;
  Connection connection_ = Connection::kConnecting;
  std::string last_error_;
};

}  // namespace df::tui
