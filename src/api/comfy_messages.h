// Turns a job's events into ComfyUI's WebSocket execution messages, in ComfyUI's order.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"

namespace df::api {

// ComfyUI's execution_error data: `end` ({prompt_id, timestamp}) with the failing node (the one
// the error's details name, else `node_id`: "" when none ran), the nodes executed before it, and
// the error {code, message, details}; fields ComfyUI fills from Python (traceback, current inputs
// and outputs) are empty.
nlohmann::json execution_error_data(nlohmann::json end, const std::string& node_id,
                                    const std::string& node_type,
                                    const std::vector<std::string>& executed,
                                    const nlohmann::json& error, const std::string& message);

// Follows one job: feed it the job's events in order; it answers with the messages ComfyUI would
// send to the client that queued the prompt ({"type", "data"} objects).
class ComfyMessageTranslator {
 public:
  explicit ComfyMessageTranslator(std::string prompt_id) : prompt_id_(std::move(prompt_id)) {}
  std::vector<nlohmann::json> translate(const Event& event);
  bool finished() const { return finished_; }

 private:
  std::vector<nlohmann::json> cached_once(const nlohmann::json& nodes, int64_t timestamp);

  std::string prompt_id_;
  bool cached_sent_ = false;
  bool finished_ = false;
  std::string current_node_;
  std::string current_class_;
  std::vector<std::string> executed_;
};

}  // namespace df::api
