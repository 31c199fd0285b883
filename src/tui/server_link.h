// What the terminal client asks of a Dream Forge server, over ZeroMQ (DGX-Pixels) or /v1 + SSE.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pixels/pixels_messages.h"

namespace df::tui {

// Both kinds of link speak in DGX-Pixels messages: the /v1 link turns its requests into /v1 calls
// and its jobs' SSE events into the same updates (pixels::JobUpdates).
class ServerLink {
 public:
  virtual ~ServerLink() = default;
  // Sends a request and returns the reply map (job_accepted, job_cancelled, job_error, model_list,
  // status_info, pong or error). Throws Error(kUnavailable) when the server does not answer in
  // time; the link starts afresh (new sockets or connections) on the next call, so a restarted
  // server is found again.
  virtual nlohmann::json request(const pixels::Request& request) = 0;
  // The updates that arrived (job_started, progress, preview, job_finished, job_complete,
  // job_error maps, in order), waiting at most `wait_ms` for the first.
  virtual std::vector<nlohmann::json> poll_updates(int wait_ms) = 0;
  // What it talks to, for the status line ("zmq tcp://127.0.0.1:5555" or "http://host:port").
  virtual std::string describe() const = 0;
  // How many update frames were skipped so far because they were not a message (not MessagePack,
  // or no map with a type); always 0 for links that do not receive frames.
  virtual int64_t undecodable_updates() const { return 0; }
};

// A REQ socket to `req_address` and a SUB socket (all messages) to `pub_address`; a request not
// answered within `timeout_ms` throws and the REQ socket is replaced.
std::unique_ptr<ServerLink> open_zmq_link(const std::string& req_address,
                                          const std::string& pub_address, int timeout_ms = 5000);
// The /v1 API at `base_url` (http://host:port): generate = POST /v1/jobs (Idempotency-Key = the
// request id), cancel = POST /v1/jobs/{id}/cancel, list_models = GET /v1/models, status from
// /v1/jobs counts, ping = /healthz; updates from each accepted job's SSE stream, with image_path a
// signed artifact URL.
// `api_key` is sent as "Authorization: Bearer" ("" sends none).
std::unique_ptr<ServerLink> open_http_link(const std::string& base_url, int timeout_ms = 5000,
                                           const std::string& api_key = "");

}  // namespace df::tui
