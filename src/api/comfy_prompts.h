// ComfyUI's queue routes on Dream Forge jobs: /prompt, /queue, /interrupt, /history, /free.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "api/job_intake.h"
#include "http/router.h"
#include "store/store.h"

namespace df::api {

// Whether `id` may be a prompt id a client chooses: 1-128 of A-Z a-z 0-9 . _ : -
bool valid_prompt_id(const std::string& id);

struct ComfyPromptHooks {
  std::function<void(const std::string& prompt_id)> job_created;  // follow it on the WebSocket
  std::function<void()> queue_changed;  // tell WebSocket clients (status message)
  std::function<void()> free_memory;    // runners drop models and caches between jobs
};

class ComfyPrompts {
 public:
  // New prompts go through `intake` (validated and routed like /v1 workflow jobs).
  ComfyPrompts(store::Store& store, JobIntake& intake, int max_attempts, ComfyPromptHooks hooks);
  void register_routes(http::Router& router);

 private:
  http::Response post_prompt(http::Request& request);
  http::Response get_prompt(http::Request& request);
  http::Response get_queue(http::Request& request);
  http::Response post_queue(http::Request& request);
  http::Response interrupt(http::Request& request);
  http::Response get_history(http::Request& request);
  http::Response get_history_entry(http::Request& request);
  http::Response post_history(http::Request& request);
  http::Response free(http::Request& request);

  store::Store& store_;
  JobIntake& intake_;
  int max_attempts_;
  ComfyPromptHooks hooks_;
  std::atomic<int64_t> number_{0};
};

}  // namespace df::api
