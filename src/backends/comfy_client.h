// A client of one ComfyUI server's HTTP API: prompts, history, files, queue, memory and node info.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/client.h"

namespace df::backends {

// Where a ComfyUI server answers and how to reach it.
struct ComfyEndpoint {
  std::string url;          // http://host:port (no path)
  std::string auth_header;  // "Name: value" sent with every request; "" for none
  int timeout_ms = 30000;   // each request's connect/send/receive bound
};

// POST /prompt's answer.
struct PromptSubmission {
  bool accepted = false;
  std::string prompt_id;         // when accepted
  int64_t number = 0;            // its place in the server's queue
  nlohmann::json error;          // ComfyUI's {"type","message","details","extra_info"} when refused
  nlohmann::json node_errors;    // ComfyUI's node_errors when refused (or {} )
};

// One output file of a prompt, as /history and the "executed" message name it.
struct ComfyFile {
  std::string filename;
  std::string subfolder;
  std::string type = "output";  // output | temp | input
};

// Every method throws Error(kUnavailable) when the server cannot be reached, the connection
// breaks, or it answers 5xx; Error(kNotFound) when it answers 404 (no such file, folder or route);
// Error(kBadRequest) for another refusal or an answer that is not the JSON ComfyUI sends.
class ComfyClient {
 public:
  explicit ComfyClient(ComfyEndpoint endpoint);

  const ComfyEndpoint& endpoint() const { return endpoint_; }

  // POST /prompt {"prompt", "client_id", "extra_data"?, "prompt_id"?}; a 400 is a refusal, not an
  // exception.
  PromptSubmission submit(const nlohmann::json& graph, const std::string& client_id,
                          const nlohmann::json& extra_data = nullptr,
                          const std::string& prompt_id = "");
  // GET /history/{id}: the prompt's entry ({"prompt", "outputs", "status", ...}), or nullopt while
  // the server has none (still queued or running).
  std::optional<nlohmann::json> history(const std::string& prompt_id);
  // GET /view?filename=&subfolder=&type=: the file's bytes.
  std::string view(const ComfyFile& file);
  // POST /upload/image (multipart: image, subfolder, type=input, overwrite=true): the name the
  // server stored it under ({"name","subfolder","type"}).
  ComfyFile upload_image(const std::string& filename, const std::string& bytes,
                         const std::string& subfolder = "");
  // POST /interrupt {"prompt_id"}: stops the prompt when it is the one running.
  void interrupt(const std::string& prompt_id);
  // POST /queue {"delete": [prompt_id]}: drops a prompt that has not started.
  void delete_queued(const std::string& prompt_id);
  // GET /queue: {"queue_running": [...], "queue_pending": [...]}.
  nlohmann::json queue();
  // Prompts running plus pending on the server (from GET /queue).
  int queue_remaining();
  // POST /free {"unload_models": true, "free_memory": true}.
  void free_memory();
  // GET /object_info: {class_type: definition}.
  nlohmann::json object_info();
  // GET /models: the model folder names; GET /models/{folder}: its files.
  std::vector<std::string> model_folders();
  std::vector<std::string> model_files(const std::string& folder);
  // GET /system_stats.
  nlohmann::json system_stats();
  // The WebSocket URL target for `client_id`: "/ws?clientId=<id>" (the host is endpoint().url's).
  std::string websocket_target(const std::string& client_id) const;
  // The endpoint's auth header split as (name, value); nullopt when none is configured.
  std::optional<std::pair<std::string, std::string>> auth_header() const;

 private:
  http::ClientResponse call(const std::string& method, const std::string& target,
                            const std::string& body, const std::string& content_type);

  ComfyEndpoint endpoint_;
};

}  // namespace df::backends
