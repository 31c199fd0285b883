// The terminal client's link to the /v1 API: requests as /v1 calls, updates from jobs' SSE streams.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <boost/url/encode.hpp>
#include <boost/url/rfc/pchars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "core/error.h"
#include "http/client.h"
#include "http/json_text.h"
#include "pixels/job_updates.h"
#include "tui/server_link.h"
#include "tui/v1_translation.h"

namespace df::tui {
namespace {

using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Longer than the server's 15 s heartbeat: a quiet stream is not a broken one.
constexpr int kStreamSilenceMs = 20000;
constexpr auto kFirstPause = std::chrono::milliseconds(250);
constexpr auto kLongestPause = std::chrono::milliseconds(5000);
constexpr int kJobsPageSize = 200;

std::string job_target(const std::string& job_id, const std::string& suffix = "") {
  return "/v1/jobs/" + boost::urls::encode(job_id, boost::urls::pchars) + suffix;
}

bool succeeded(const http::ClientResponse& response) {
  return response.status >= 200 && response.status <= 299;
}

// The updates of every followed job, for poll_updates; shared with the threads that follow the
// jobs, so that it outlives the link while they wind down.
class UpdateQueue {
 public:
  // True the first time a job is named: the caller then follows it.
  bool start_following(const std::string& job_id) {
    std::lock_guard lock(mutex_);
    return followed_.insert(job_id).second;
  }

  void push(const std::vector<nlohmann::ordered_json>& updates) {
    if (updates.empty()) return;
    {
      std::lock_guard lock(mutex_);
      for (const auto& update : updates) updates_.emplace_back(update);
    }
    arrived_.notify_all();
  }

  std::vector<json> take(int wait_ms) {
    std::unique_lock lock(mutex_);
    arrived_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                      [&] { return !updates_.empty() || closed_; });
    std::vector<json> taken(std::make_move_iterator(updates_.begin()),
                            std::make_move_iterator(updates_.end()));
    updates_.clear();
    return taken;
  }

  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    arrived_.notify_all();
  }

  bool closed() {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  // Waits `pause` unless the link closes first; true when it has closed.
  bool closed_within(std::chrono::milliseconds pause) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, pause, [&] { return closed_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<json> updates_;
  std::set<std::string> followed_;
  bool closed_ = false;
};

// Where the /v1 API is and the key it wants ("" for none).
struct ServiceAddress {
  std::string base_url;
  std::string api_key;

  http::Client client(int timeout_ms) const {
    http::Client made(base_url, timeout_ms);
    made.set_api_key(api_key);
    return made;
  }
};

// The signed URLs of one job's artifacts by blob key, listed again for a key not seen yet.
class ArtifactUrls {
 public:
  ArtifactUrls(const ServiceAddress& service, std::string job_id, int timeout_ms)
      : base_url_(service.base_url),
        job_id_(std::move(job_id)),
        client_(service.client(timeout_ms)) {}

  // The URL to open for `key`; "" when the server cannot say (unreachable, or no such artifact).
  std::string locate(const std::string& key) {
    if (!urls_.contains(key)) list();
    const auto found = urls_.find(key);
    return found == urls_.end() ? "" : found->second;
  }

 private:
  void list() {
    try {
      const http::ClientResponse listing = client_.get(job_target(job_id_, "/artifacts"));
      if (!succeeded(listing)) return;
      for (const auto& artifact : listing.json().value("artifacts", json::array())) {
        const std::string url = artifact.value("url", "");
        urls_[artifact.value("key", "")] = url.starts_with('/') ? base_url_ + url : url;
      }
    } catch (const Error&) {
      // Not listed now: the update then names no image, as for an artifact the server lost.
    }
  }

  std::string base_url_;
  std::string job_id_;
  http::Client client_;
  std::map<std::string, std::string> urls_;
};

// Follows one job's event stream until the job has finished, the server says it has no such job,
// or the link closes; reconnects after a broken connection with Last-Event-ID, pausing longer
// each time in a row.
void follow_job(const ServiceAddress& service, const std::string& job_id, int items,
                int timeout_ms, const std::shared_ptr<UpdateQueue>& queue) {
  ArtifactUrls artifacts(service, job_id, timeout_ms);
  pixels::JobUpdates updates(
      job_id, [&](const std::string& key) { return artifacts.locate(key); }, items);
  http::Client stream = service.client(kStreamSilenceMs);
  std::string last_event_id;
  auto pause = kFirstPause;
  const auto on_event = [&](const http::ServerSentEvent& sse) {
    if (!sse.id.empty()) last_event_id = sse.id;
    pause = kFirstPause;
    try {
      const json data = http::parse_json_text(sse.data, "an event of the job's stream");
      queue->push(updates.on_event(event_from_v1_json(data)));
    } catch (const Error&) {
      // An event this client cannot read is skipped; the job's next events still count.
    }
    return !updates.finished() && !queue->closed();
  };
  while (!updates.finished() && !queue->closed()) {
    Headers headers;
    if (!last_event_id.empty()) headers.emplace_back("Last-Event-ID", last_event_id);
    std::string error_body;
    try {
      const int status = stream.stream_events(job_target(job_id, "/events"), headers, on_event,
                                              &error_body);
      if (status == 404) {
        queue->push({pixels::job_error(job_id, error_message(status, error_body))});
        return;
      }
    } catch (const Error&) {
      // Unreachable or broken off (a restarting server): try again after the pause.
    }
    if (updates.finished() || queue->closed_within(pause)) return;
    pause = std::min(pause * 2, kLongestPause);
  }
}

class HttpLink : public ServerLink {
 public:
  HttpLink(const std::string& base_url, int timeout_ms, const std::string& api_key)
      : service_{base_url.ends_with('/') ? base_url.substr(0, base_url.size() - 1) : base_url,
                 api_key},
        timeout_ms_(timeout_ms),
        client_(service_.client(timeout_ms)),
        updates_(std::make_shared<UpdateQueue>()) {}

  ~HttpLink() override { updates_->close(); }  // the followers end at their next event or pause

  json request(const pixels::Request& request) override {
    return std::visit([this](const auto& typed) { return json(answer(typed)); }, request);
  }

  std::vector<json> poll_updates(int wait_ms) override { return updates_->take(wait_ms); }

  std::string describe() const override { return service_.base_url; }

 private:
  nlohmann::ordered_json answer(const pixels::GenerateRequest& request) {
    json body;
    try {
      body = v1_job_body(request);
    } catch (const Error& e) {
      return pixels::job_error(request.id, e.what());
    }
    const http::ClientResponse created =
        client_.post_json("/v1/jobs", body, {{"Idempotency-Key", request.id}});
    if (!succeeded(created)) {
      return pixels::job_error(request.id, error_message(created.status, created.body));
    }
    const json job = created.json();
    const std::string job_id = job.value("id", "");
    follow(job_id, job.value("count", 1));
    return pixels::job_accepted(job_id, estimated_seconds(job));
  }

  nlohmann::ordered_json answer(const pixels::CancelRequest& request) {
    const http::ClientResponse cancel =
        client_.post_json(job_target(request.job_id, "/cancel"), json::object());
    if (cancel.status == 202) return pixels::job_cancelled(request.job_id);
    if (succeeded(cancel)) {
      return pixels::job_error(request.job_id, "job " + request.job_id + " has already finished");
    }
    return pixels::job_error(request.job_id, error_message(cancel.status, cancel.body));
  }

  nlohmann::ordered_json answer(const pixels::ListModelsRequest&) {
    const http::ClientResponse listing = client_.get("/v1/models");
    if (!succeeded(listing)) {
      return pixels::error_reply(error_message(listing.status, listing.body));
    }
    return pixels::model_list(model_entries(listing.json()));
  }

  nlohmann::ordered_json answer(const pixels::StatusRequest&) {
    const http::ClientResponse health = client_.get("/healthz");
    if (!succeeded(health)) return pixels::error_reply(error_message(health.status, health.body));
    const json about = health.json();
    pixels::StatusInfo status;
    status.version = about.value("version", "");
    status.uptime_s = about.value("uptime_s", int64_t{0});
    status.queue_size = count_jobs("queued");
    status.active_jobs = count_jobs("running");
    return pixels::status_info(status);
  }

  nlohmann::ordered_json answer(const pixels::PingRequest&) {
    const http::ClientResponse health = client_.get("/healthz");
    if (!succeeded(health)) return pixels::error_reply(error_message(health.status, health.body));
    return pixels::pong();
  }

  // The number of jobs with `status`, page by page.
  int64_t count_jobs(const std::string& status) {
    int64_t count = 0;
    std::string cursor;
    do {
      std::string target = "/v1/jobs?status=" + status + "&limit=" + std::to_string(kJobsPageSize);
      if (!cursor.empty()) {
        target += "&cursor=" + boost::urls::encode(cursor, boost::urls::unreserved_chars);
      }
      const http::ClientResponse page = client_.get(target);
      if (!succeeded(page)) {
        throw Error(ErrorCode::kUnavailable, error_message(page.status, page.body));
      }
      const json listing = page.json();
      count += static_cast<int64_t>(listing.value("jobs", json::array()).size());
      const json& next = listing.value("next_cursor", json());
      cursor = next.is_string() ? next.get<std::string>() : "";
    } while (!cursor.empty());
    return count;
  }

  // Starts a thread that follows the job's events (once a job); it ends with the job.
  void follow(const std::string& job_id, int items) {
    if (job_id.empty() || !updates_->start_following(job_id)) return;
    std::thread(follow_job, service_, job_id, items, timeout_ms_, updates_).detach();
  }

  ServiceAddress service_;
  int timeout_ms_;
  http::Client client_;
  std::shared_ptr<UpdateQueue> updates_;
};

}  // namespace

std::unique_ptr<ServerLink> open_http_link(const std::string& base_url, int timeout_ms,
                                           const std::string& api_key) {
  return std::make_unique<HttpLink>(base_url, timeout_ms, api_key);
}

}  // namespace df::tui
