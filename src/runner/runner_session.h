// The runner's request loop: hello, run (a graph for N items), free, shutdown.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/executor.h"
#include "graph/node_schema.h"
#include "nodes/builtin_nodes.h"
#include "nodes/checkpoint_store.h"
#include "runner/protocol_messages.h"
#include "runner/runner_io.h"

namespace df::runner {

struct RunnerOptions {
  std::string models_dir = "models";
  std::string input_dir = "input";
  std::string device = "auto";
  std::string dtype = "auto";
  std::string clip_vocab_dir;
  int64_t ram_budget_mb = 0;   // what loaded models may hold in host memory (0: the default)
  int64_t vram_budget_mb = 0;  // ... in device memory (0: the default)
};

class RunnerSession {
 public:
  RunnerSession(const RunnerOptions& options, EventWriter& events, RequestReader& requests);

  // Serves requests until shutdown or end of input.
  void serve();

 private:
  void handle(const Request& request);
  // Answers a request that parse_request refused (a run with an id still ends with run_finished).
  void answer_malformed(const nlohmann::json& message, const Error& error);
  void hello(const HelloRequest& request);
  void free();
  void run(const RunRequest& request);
  // Runs every item; returns the number completed. Throws on the first failing item.
  int run_items(const RunRequest& run, const std::vector<RunItem>& items);
  void finish_run(const std::string& run_id, const std::string& status, int completed,
                  std::chrono::steady_clock::time_point started);
  void report_error(const std::exception& error, const std::string& run_id = "",
                    std::optional<int> item_index = std::nullopt);
  RunnerCapabilities capabilities() const;
  graph::SchemaContext schema_context() const;

  RunnerOptions options_;
  EventWriter& events_;
  RequestReader& requests_;
  nodes::CheckpointStore store_;
  nodes::RunEnvironment env_;
  graph::NodeSchemaRegistry schemas_;
  graph::NodeImplRegistry implementations_;
  graph::Executor executor_;
  bool previews_ = false;  // the current run asked for latent previews after each sampler step
};

}  // namespace df::runner
