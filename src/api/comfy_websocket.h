// ComfyUI's /ws: client sockets by id, status broadcasts, and each prompt's execution messages.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/comfy_messages.h"
#include "api/event_hub.h"
#include "core/live_image.h"
#include "http/router.h"
#include "store/store.h"

namespace df::api {

class ComfyWebSocketHub {
 public:
  // `server_flags`: what the server answers a client's feature_flags message with.
  ComfyWebSocketHub(store::Store& store, EventHub& hub, nlohmann::json server_flags);
  ~ComfyWebSocketHub();  // stops following jobs
  ComfyWebSocketHub(const ComfyWebSocketHub&) = delete;
  ComfyWebSocketHub& operator=(const ComfyWebSocketHub&) = delete;

  // GET /ws?clientId=...
  void register_routes(http::Router& router);
  // Sends {"type":"status"} with the queue size to every client (the queue changed).
  void broadcast_status();
  // Starts following a job just created (so even a job that ends at once reports to its client).
  void follow(const std::string& job_id);
  // An image of a prompt as a binary frame to the prompt's client (dropped when it is not
  // connected): type 4 with metadata for clients that announced supports_preview_metadata, else
  // type 1. A latent preview goes out at once; a streamed whole image (frame_id set) is held until
  // the messages of the job event naming it have gone out, so it arrives after its node's
  // `executing` and before whatever followed.
  void send_live_image(const std::string& client_id, const std::string& prompt_id, LiveImage image);
  // A JSON message to the client with id `sid` (the Logs panel's "logs" messages); false when no
  // such client is connected.
  bool send_to(const std::string& sid, const nlohmann::json& message);

 private:
  class Client;
  struct FollowedJob {
    std::string client_id;
    int64_t last_event_id = 0;
    std::unique_ptr<ComfyMessageTranslator> translator;
  };

  // Registers the socket under `sid`; its first status message names `visible_sid`.
  void connect(const std::string& sid, std::shared_ptr<http::WebSocketConnection> connection,
               const std::string& visible_sid);
  void disconnect(const std::string& sid, const http::WebSocketConnection* connection);
  nlohmann::json status_message(bool with_sid, const std::string& sid);
  // The follower thread: reads the events of the jobs it follows and sends their messages. Jobs
  // this process's workers announced news for are read at once; every job is re-read (and the
  // queue scanned for jobs other processes created) at least every kFullRoundInterval.
  void follow_jobs(std::stop_token stop);
  // Follows the jobs follow() named and, with `scan_queue`, every queued or running job.
  void discover_jobs(bool scan_queue);
  void pump(const std::string& job_id, FollowedJob& job);
  // The frame of `image` for the client `sid`; nullopt when no such client is connected.
  std::optional<std::string> image_frame(const std::string& sid, const std::string& prompt_id,
                                         const LiveImage& image);
  void send_binary_to(const std::string& sid, std::string frame);
  // Streamed images waiting for their event (the follower releases them in the job's order).
  void hold_image(const std::string& frame_id, const std::string& sid, std::string frame);
  void release_held_image(const std::string& frame_id);
  // Drops held images whose event never came (their job is followed by another process).
  void drop_stale_images();

  store::Store& store_;
  EventHub& hub_;
  nlohmann::json server_flags_;

  std::mutex clients_mutex_;
  std::map<std::string, std::shared_ptr<http::WebSocketConnection>> clients_;
  std::set<std::string> preview_metadata_clients_;  // sids that announced supports_preview_metadata

  struct HeldImage {
    std::string client_id;
    std::string frame;
    std::chrono::steady_clock::time_point held_at;
  };
  static constexpr size_t kMaxHeldBytes = size_t{512} << 20;  // past this, new images are dropped
  static constexpr std::chrono::seconds kHeldImageLifetime{120};
  std::mutex held_mutex_;
  std::map<std::string, HeldImage> held_images_;  // by frame id; guarded by held_mutex_
  size_t held_bytes_ = 0;                         // guarded by held_mutex_

  static constexpr std::chrono::milliseconds kFullRoundInterval{500};
  std::map<std::string, FollowedJob> jobs_;  // used by the follower thread only
  std::mutex wake_mutex_;
  std::set<std::string> to_follow_;       // guarded by wake_mutex_
  std::set<std::string> jobs_with_news_;  // announced by the EventHub; guarded by wake_mutex_
  std::condition_variable_any wake_;
  bool news_ = false;
  uint64_t hub_token_ = 0;
  std::jthread follower_;
};

}  // namespace df::api
