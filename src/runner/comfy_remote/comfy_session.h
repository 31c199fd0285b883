// dreamforge-comfy-runner's request loop: hello, run, free and shutdown, forwarded to one ComfyUI server.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/comfy_client.h"
#include "backends/comfy_socket.h"
#include "runner/comfy_remote/backend_calls.h"
#include "runner/protocol_messages.h"
#include "runner/runner_io.h"

namespace df::runner {

struct ComfyRunnerOptions {
  std::string url;          // http://host:port of the ComfyUI server
  std::string auth_header;  // "Name: value" sent with every request; "" for none
  std::string input_dir = "input";  // where the files the graphs name are read for upload
  std::string name;         // the backend's name in messages ("" : its url)
  int timeout_ms = 30000;   // each request's bound
  int outage_ms = 5000;     // how long a server that does not answer is waited for mid-run
};

class ComfySession {
 public:
  ComfySession(const ComfyRunnerOptions& options, EventWriter& events, RequestReader& requests);
  ~ComfySession();

  // Serves requests until shutdown or end of input. Returns the exit status: 0, or 1 when hello
  // found the server unreachable (after an "unavailable" error event).
  int serve();

 private:
  void hello(const HelloRequest& request);
  void run(const RunRequest& request);
  // Runs each of the run's items; returns how many completed. Throws the first item's error.
  int run_items(const RunRequest& request, const std::vector<RunItem>& items);
  void free();
  // The memory object of run_started/run_finished/freed: this process's resident memory and the
  // server's devices as last read (not read on a run's path: each read is a request to the server).
  nlohmann::json memory_report() const;
  // Reads the server's memory for later reports from `stats` (its /system_stats), or from the
  // server when `stats` is null; a server that does not answer leaves none.
  void read_server_memory(const nlohmann::json& stats = nullptr);
  // The server's node definitions (read at hello, else now).
  const nlohmann::json& object_info();
  void report_error(const Error& error, const std::string& run_id, std::optional<int> item_index);

  ComfyRunnerOptions options_;
  std::string backend_;  // how messages name the server
  EventWriter& events_;
  RequestReader& requests_;
  backends::ComfyClient client_;
  std::string client_id_;  // this process's ComfyUI client id
  nlohmann::json object_info_;
  nlohmann::json server_memory_;  // {"device", "backend": {...}} from /system_stats; null: unknown
  std::unique_ptr<backends::ComfySocket> socket_;
};

}  // namespace df::runner
