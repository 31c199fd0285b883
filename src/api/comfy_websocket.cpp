// ComfyUI's /ws on top of the job events.
#include "api/comfy_websocket.h"

#include <chrono>
#include <optional>

#include "api/access_policy.h"
#include "api/comfy_binary_frames.h"
#include "api/comfy_history.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "http/json_text.h"
#include "telemetry/service_log.h"

namespace df::api {

using nlohmann::json;

// One socket: registers under its client id, answers the first feature_flags message.
class ComfyWebSocketHub::Client : public http::WebSocketHandler {
 public:
  // `sid`: the id messages find it by (scoped to its user); `visible_sid`: the id it knows.
  Client(ComfyWebSocketHub& owner, std::string sid, std::string visible_sid)
      : owner_(owner), sid_(std::move(sid)), visible_sid_(std::move(visible_sid)) {}
  void on_open(std::shared_ptr<http::WebSocketConnection> connection) override {
    connection_ = connection.get();
    owner_.connect(sid_, std::move(connection), visible_sid_);
  }
  void on_text(const std::string& text) override {
    if (answered_) return;  // ComfyUI reads only a client's first message
    answered_ = true;
    const json message = http::parse_json_text_or_discarded(text);
    if (message.is_object() && message.contains("type") && message["type"] == "feature_flags") {
      const json flags = message.contains("data") ? message["data"] : json::object();
      if (flags.is_object() && flags.contains("supports_preview_metadata") &&
          flags["supports_preview_metadata"] == true) {
        std::lock_guard lock(owner_.clients_mutex_);
        owner_.preview_metadata_clients_.insert(sid_);
      }
      owner_.send_to(sid_, {{"type", "feature_flags"}, {"data", owner_.server_flags_}});
    }
  }
  void on_close() override { owner_.disconnect(sid_, connection_); }

 private:
  ComfyWebSocketHub& owner_;
  std::string sid_;
  std::string visible_sid_;
  const http::WebSocketConnection* connection_ = nullptr;
  bool answered_ = false;
};

ComfyWebSocketHub::ComfyWebSocketHub(store::Store& store, EventHub& hub, json server_flags)
    : store_(store), hub_(hub), server_flags_(std::move(server_flags)) {
  hub_token_ = hub_.subscribe_all([this](const std::string& job_id) {
    {
      std::lock_guard lock(wake_mutex_);
      jobs_with_news_.insert(job_id);
      news_ = true;
    }
    wake_.notify_all();
  });
  follower_ = std::jthread([this](std::stop_token stop) { follow_jobs(stop); });
}

ComfyWebSocketHub::~ComfyWebSocketHub() {
  hub_.unsubscribe_all(hub_token_);
  follower_.request_stop();
  wake_.notify_all();
}

void ComfyWebSocketHub::register_routes(http::Router& router) {
  router.add("GET", "/ws", [this](http::Request& request) {
    auto found = request.query.find("clientId");
    const std::string sid = found != request.query.end() && !found->second.empty() ? found->second
                                                                                   : random_hex(16);
    return http::Response::websocket_upgrade(
        std::make_shared<Client>(*this, scoped_client_id(request.caller, sid), sid));
  });
}

json ComfyWebSocketHub::status_message(bool with_sid, const std::string& sid) {
  json data = {{"status", {{"exec_info", {{"queue_remaining", queue_remaining(store_)}}}}}};
  if (with_sid) data["sid"] = sid;
  return {{"type", "status"}, {"data", data}};
}

void ComfyWebSocketHub::connect(const std::string& sid, std::shared_ptr<http::WebSocketConnection> connection,
                                const std::string& visible_sid) {
  {
    std::lock_guard lock(clients_mutex_);
    clients_[sid] = connection;  // a reconnect with the same id replaces the old socket
    preview_metadata_clients_.erase(sid);  // until this socket announces its own flags
  }
  connection->send_text(dump_json(status_message(true, visible_sid)));
}

void ComfyWebSocketHub::disconnect(const std::string& sid, const http::WebSocketConnection* connection) {
  std::lock_guard lock(clients_mutex_);
  auto found = clients_.find(sid);
  if (found != clients_.end() && found->second.get() == connection) {
    clients_.erase(found);
    preview_metadata_clients_.erase(sid);
  }
}

bool ComfyWebSocketHub::send_to(const std::string& sid, const json& message) {
  std::shared_ptr<http::WebSocketConnection> connection;
  {
    std::lock_guard lock(clients_mutex_);
    auto found = clients_.find(sid);
    if (found == clients_.end()) return false;
    connection = found->second;
  }
  connection->send_text(dump_json(message));
  return true;
}

std::optional<std::string> ComfyWebSocketHub::image_frame(const std::string& sid,
                                                          const std::string& prompt_id,
                                                          const LiveImage& image) {
  if (sid.empty()) return std::nullopt;
  bool with_metadata = false;
  {
    std::lock_guard lock(clients_mutex_);
    if (!clients_.count(sid)) return std::nullopt;
    with_metadata = preview_metadata_clients_.count(sid) > 0;
  }
  return with_metadata ? preview_image_with_metadata_frame(image, prompt_id) : preview_image_frame(image);
}

void ComfyWebSocketHub::send_binary_to(const std::string& sid, std::string frame) {
  std::shared_ptr<http::WebSocketConnection> connection;
  {
    std::lock_guard lock(clients_mutex_);
    auto found = clients_.find(sid);
    if (found == clients_.end()) return;
    connection = found->second;
  }
  connection->send_binary(std::move(frame));
}

void ComfyWebSocketHub::send_live_image(const std::string& client_id, const std::string& prompt_id,
                                        LiveImage image) {
  std::optional<std::string> frame = image_frame(client_id, prompt_id, image);
  if (!frame) return;
  if (image.frame_id.empty()) return send_binary_to(client_id, std::move(*frame));
  hold_image(image.frame_id, client_id, std::move(*frame));
}

void ComfyWebSocketHub::hold_image(const std::string& frame_id, const std::string& sid, std::string frame) {
  size_t waiting = 0;
  {
    std::lock_guard lock(held_mutex_);
    waiting = held_bytes_;
    if (held_bytes_ + frame.size() <= kMaxHeldBytes) {
      held_bytes_ += frame.size();
      held_images_[frame_id] = {sid, std::move(frame), std::chrono::steady_clock::now()};
      return;
    }
  }
  telemetry::service_log().error("dreamforge: dropped a streamed image for client " + sid + ": " +
                                 std::to_string(waiting) + " bytes of images already wait");
}

void ComfyWebSocketHub::release_held_image(const std::string& frame_id) {
  HeldImage image;
  {
    std::lock_guard lock(held_mutex_);
    auto found = held_images_.find(frame_id);
    if (found == held_images_.end()) return;
    image = std::move(found->second);
    held_images_.erase(found);
    held_bytes_ -= image.frame.size();
  }
  send_binary_to(image.client_id, std::move(image.frame));
}

void ComfyWebSocketHub::drop_stale_images() {
  const auto oldest_kept = std::chrono::steady_clock::now() - kHeldImageLifetime;
  std::lock_guard lock(held_mutex_);
  std::erase_if(held_images_, [&](const auto& entry) {
    if (entry.second.held_at >= oldest_kept) return false;
    held_bytes_ -= entry.second.frame.size();
    return true;
  });
}

void ComfyWebSocketHub::broadcast_status() {
  const std::string text = dump_json(status_message(false, ""));
  std::lock_guard lock(clients_mutex_);
  for (const auto& [sid, connection] : clients_) connection->send_text(text);
}

void ComfyWebSocketHub::follow_jobs(std::stop_token stop) {
  std::optional<std::chrono::steady_clock::time_point> last_full_round;  // none yet: now
  while (!stop.stop_requested()) {
    try {
      const auto now = std::chrono::steady_clock::now();
      const bool full_round = !last_full_round || now - *last_full_round >= kFullRoundInterval;
      if (full_round) {
        last_full_round = now;
        drop_stale_images();
      }
      std::set<std::string> with_news;
      {
        std::lock_guard lock(wake_mutex_);
        with_news.swap(jobs_with_news_);  // taken before the events they announce are read
      }
      discover_jobs(full_round);
      for (auto it = jobs_.begin(); it != jobs_.end();) {
        FollowedJob& job = it->second;
        if (full_round || job.last_event_id == 0 || with_news.count(it->first)) pump(it->first, job);
        it = job.translator->finished() ? jobs_.erase(it) : std::next(it);
      }
    } catch (const std::exception&) {
      // The store is unavailable for a moment: the next round reads on from the same event ids.
    }
    std::unique_lock lock(wake_mutex_);
    wake_.wait_for(lock, stop, std::chrono::milliseconds(250), [this] { return news_; });
    news_ = false;
  }
}

void ComfyWebSocketHub::follow(const std::string& job_id) {
  {
    std::lock_guard lock(wake_mutex_);
    to_follow_.insert(job_id);
    news_ = true;
  }
  wake_.notify_all();
}

void ComfyWebSocketHub::discover_jobs(bool scan_queue) {
  std::set<std::string> requested;
  {
    std::lock_guard lock(wake_mutex_);
    requested.swap(to_follow_);
  }
  std::vector<Job> found;
  for (const auto& id : requested) {
    if (auto job = store_.get_job(id)) found.push_back(std::move(*job));
  }
  for (auto status : {JobStatus::kQueued, JobStatus::kRunning}) {
    if (!scan_queue) break;
    for (auto& job : jobs_with_status(store_, status)) found.push_back(std::move(job));
  }
  for (const auto& job : found) {
    if (jobs_.count(job.id)) continue;
    FollowedJob followed;
    followed.client_id = job.spec.value("comfy", json::object()).value("client_id", "");
    followed.translator = std::make_unique<ComfyMessageTranslator>(job.id);
    jobs_.emplace(job.id, std::move(followed));
  }
}

void ComfyWebSocketHub::pump(const std::string& job_id, FollowedJob& job) {
  while (true) {
    auto events = store_.events_after(job_id, job.last_event_id, 500);
    if (events.empty()) return;
    for (const auto& event : events) {
      job.last_event_id = event.id;
      if (event.type == "job_started") broadcast_status();  // dequeued: the queue changed
      for (const auto& message : job.translator->translate(event)) {
        if (!job.client_id.empty()) send_to(job.client_id, message);
      }
      if (event.type == "streamed_image") release_held_image(event.data.value("frame", ""));
      if (event.type == "job_finished") {
        broadcast_status();
        if (!job.client_id.empty()) {
          send_to(job.client_id, {{"type", "executing"}, {"data", {{"node", nullptr}, {"prompt_id", job_id}}}});
        }
        return;
      }
    }
  }
}

}  // namespace df::api
