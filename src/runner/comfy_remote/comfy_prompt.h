// Follows one prompt on a ComfyUI server to its end, turning its messages into runner events.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "backends/comfy_client.h"
#include "backends/comfy_socket.h"
#include "runner/comfy_remote/backend_calls.h"
#include "runner/protocol_messages.h"
#include "runner/runner_io.h"

namespace df::runner {

// The item a prompt runs and where its files go.
struct PromptItem {
  std::string run_id;
  int item_index = 0;
  uint64_t seed = 0;
  nlohmann::json graph;  // the graph submitted (class types for events, samplers for progress)
  std::string prompt_id;
  std::string output_dir;
  std::string temp_dir;
  bool previews = false;
};

class PromptFollower {
 public:
  // `canceled` says whether the run was asked to stop.
  PromptFollower(backends::ComfyClient& client, BackendCalls& calls, EventWriter& events,
                 std::function<bool()> canceled);

  // Follows `item`'s prompt through `socket` while it stays open (it is reset when it drops), then
  // by polling /history. Returns once the prompt succeeded with its outputs written and reported;
  // throws the prompt's error (backends/comfy_errors.h), Error(kCanceled) after a cancel, or
  // Error(kUnavailable) when the server stopped answering.
  void follow(const PromptItem& item, std::unique_ptr<backends::ComfySocket>& socket);

 private:
  // Handles one /ws text message; true when it ends the prompt.
  bool on_message(const nlohmann::json& message);
  void on_binary(const std::string& frame);
  // Fetches, writes and reports each file of an `executed` output not reported yet.
  void take_outputs(const std::string& node, const nlohmann::json& output);
  // Asks the server to stop the prompt; true when it was still queued (then it never runs).
  bool cancel_on_server();
  // True when the history entry says the prompt ended (throws its error).
  bool finished_in_history();

  backends::ComfyClient& client_;
  BackendCalls& calls_;
  EventWriter& events_;
  std::function<bool()> canceled_;
  const PromptItem* item_ = nullptr;
  std::set<std::string> reported_;  // "type/subfolder/filename" of files already reported
  std::string current_node_;
  std::string progress_node_;
  int samplers_ = 1;
  int finished_samplers_ = 0;
};

}  // namespace df::runner
