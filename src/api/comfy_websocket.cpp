// ComfyUI's /ws on top of the job events.
#include "api/comfy_websocket.h"

#include <chrono>
#include <optional>

#include "api/comfy_history.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "http/json_text.h"

namespace df::api {

using nlohmann::json;

// One socket: registers under its client id, answers the first feature_flags message.
class ComfyWebSocketHub::Client : public http::WebSocketHandler {
 public:
  Client(ComfyWebSocketHub& owner, std::string sid) : owner_(owner), sid_(std::move(sid)) {}
  void on_open(std::shared_ptr<http::WebSocketConnection> connection) override {
    connection_ = connection.get();
    owner_.connect(sid_, std::move(connection));
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
    return http::Response::websocket_upgrade(std::make_shared<Client>(*this, sid));
  });
}

json ComfyWebSocketHub::status_message(bool with_sid, const std::string& sid) {
  json data = {{"status", {{"exec_info", {{"queue_remaining", queue_remaining(store_)}}}}}};
  if (with_sid) data["sid"] = sid;
  return {{"type", "status"}, {"data", data}};
}

void ComfyWebSocketHub::connect(const std::string& sid, std::shared_ptr<http::WebSocketConnection> connection) {
  {
    std::lock_guard lock(clients_mutex_);
    clients_[sid] = connection;  // a reconnect with the same id replaces the old socket
    preview_metadata_clients_.erase(sid);  // until this socket announces its own flags
  }
  connection->send_text(dump_json(status_message(true, sid)));
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

namespace {

void append_u32_be(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

}  // namespace

void ComfyWebSocketHub::send_preview(const std::string& client_id, const std::string& prompt_id,
                                     const std::string& node, const std::vector<uint8_t>& jpeg) {
  if (client_id.empty()) return;
  std::shared_ptr<http::WebSocketConnection> connection;
  bool with_metadata = false;
  {
    std::lock_guard lock(clients_mutex_);
    auto found = clients_.find(client_id);
    if (found == clients_.end()) return;
    connection = found->second;
    with_metadata = preview_metadata_clients_.count(client_id) > 0;
  }
  std::string frame;
  if (with_metadata) {  // PREVIEW_IMAGE_WITH_METADATA
    const std::string metadata =
        dump_json({{"node_id", node},         {"prompt_id", prompt_id},
                   {"display_node_id", node}, {"parent_node_id", nullptr},
                   {"real_node_id", node},    {"image_type", "image/jpeg"}});
    append_u32_be(frame, 4);
    append_u32_be(frame, static_cast<uint32_t>(metadata.size()));
    frame += metadata;
  } else {  // PREVIEW_IMAGE, format 1 = JPEG
    append_u32_be(frame, 1);
    append_u32_be(frame, 1);
  }
  frame.append(jpeg.begin(), jpeg.end());
  connection->send_binary(std::move(frame));
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
      if (full_round) last_full_round = now;
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
