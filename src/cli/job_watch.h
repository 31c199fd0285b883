// The CLI's side of a running job service: checked /v1 calls and following a job to its end.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "http/client.h"

namespace df::cli {

// Adds --server URL (env DREAMFORGE_SERVER, default http://127.0.0.1:8188) to a command.
CLI::Option* add_server_option(CLI::App& command, std::string& server);
// Adds --api-key KEY (env DREAMFORGE_API_KEY): the key sent to a server that requires one.
CLI::Option* add_api_key_option(CLI::App& command, std::string& api_key);

// The /v1 API of one server. Every failure is a df::Error: the server's error envelope keeps its
// code and message; a server that cannot be reached is Error(kUnavailable) naming its URL.
class JobService {
 public:
  // `api_key`: sent as "Authorization: Bearer" ("" sends none).
  explicit JobService(const std::string& server_url, const std::string& api_key = "");

  nlohmann::json get(const std::string& target);
  nlohmann::json post(const std::string& target, const nlohmann::json& body);
  std::vector<uint8_t> download(const std::string& target);
  // Calls `on_event` for each event of the stream at `target` until it returns false or the
  // stream ends; the connection breaking off is Error(kUnavailable).
  void stream_events(const std::string& target, int64_t last_event_id,
                     const std::function<bool(const http::ServerSentEvent&)>& on_event);

 private:
  http::ClientResponse checked(const std::function<http::ClientResponse()>& call);

  std::string url_;
  std::string api_key_;
  http::Client client_;
};

// The request target of a job ("/v1/jobs/ID") or of one of its parts (suffix "/events"), with
// the id escaped.
std::string job_target(const std::string& job_id, const std::string& suffix = "");

// How a job ended: "succeeded", "failed" or "canceled", and its error envelope (null if none).
struct JobEnd {
  std::string status;
  nlohmann::json error;
};

struct WatchOptions {
  bool list_artifacts = false;  // print each stored image's key on stdout as it arrives
};

// Follows the job's event stream from its first event to "job_finished": on a terminal (stderr)
// a progress bar per image, plain lines otherwise. When the connection drops it reconnects with
// Last-Event-ID, so no event is shown twice; it gives up (Error kUnavailable) once the server
// stayed unreachable for about a minute.
JobEnd watch_job(JobService& service, const std::string& job_id, const WatchOptions& options = {});

// Prints how the job ended (error[code]: message for a failure) and returns the exit code:
// 0 succeeded, 1 failed, 130 canceled.
int report_job_end(const JobEnd& end);

}  // namespace df::cli
